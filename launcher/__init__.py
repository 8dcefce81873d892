"""The distribution's launcher: the command line behind ./run.sh.

It treats upstream/ and extensions/ as trees of files and drives the portal only through processes,
files and the database; it never imports the portal's package.
"""

__version__ = "1.0.0"
