module doorbuster/stage/httpfault

go 1.24
