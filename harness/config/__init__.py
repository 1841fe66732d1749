"""Reading what the user wrote: their files, systems, scenarios and a scenario's time scale."""
