module doorbuster/bench/trivial

go 1.22
