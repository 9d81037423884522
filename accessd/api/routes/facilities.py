"""Facilities, areas, panels, doors and readers: one router each, built alike."""

from accessd.api.resource import Resource, by_area, by_door, by_facility
from accessd.api.schemas import facilities as s
from accessd.services import facilities as f

resources = (
    Resource("facilities", f.FACILITY, s.FacilityCreate, s.FacilityUpdate, s.FacilityPublic),
    Resource("areas", f.AREA, s.AreaCreate, s.AreaUpdate, s.AreaPublic, filtered=by_facility),
    Resource("panels", f.PANEL, s.PanelCreate, s.PanelUpdate, s.PanelPublic, filtered=by_facility),
    Resource("doors", f.DOOR, s.DoorCreate, s.DoorUpdate, s.DoorPublic, filtered=by_area),
    Resource("readers", f.READER, s.ReaderCreate, s.ReaderUpdate, s.ReaderPublic, filtered=by_door),
)
routers = [r.router() for r in resources]
