module doorbuster/bench/httpload

go 1.24
