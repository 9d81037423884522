"""The enrollment station: read a PIV card, validate it, bind it to a person's credential."""
