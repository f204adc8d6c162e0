"""What both worker engines share; standard library only, CPython 3.12 to 3.14."""
