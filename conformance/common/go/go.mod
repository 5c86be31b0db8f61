module skein.local/conformance

go 1.24
