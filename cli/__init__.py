"""The ecomrisk command line: one Typer app for every process, the up supervisor and the private Redis."""
