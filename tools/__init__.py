"""Development tools of the repository (`make bench`); not part of the `rapport` package."""
