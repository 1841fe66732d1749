"""The live view: a page on loopback of every panel, both lanes, while a stack runs."""
