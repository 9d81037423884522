"""Request and response bodies: separate Create, Update and Public shapes per resource."""
