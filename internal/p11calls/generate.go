package p11calls

//go:generate go run ../../cmd/p11gen ../..
