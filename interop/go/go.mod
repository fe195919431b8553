module dflockd-component/interop

go 1.23

require github.com/mtingers/dflockd v1.10.0
