"""Pages and files a person or a CI server reads: the run report, the shootout, compare, JUnit."""
