// Package ckname names PKCS#11 values for people: attribute types,
// mechanisms, object classes, key types and return codes. The tables are
// generated (cmd/p11gen) from miekg/pkcs11's constants and internal/ckr.
package ckname

import "fmt"

func lookup(m map[uint64]string, v uint64) string {
	if n, ok := m[v]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", v)
}

// Attribute names a CKA_ value, or gives it in hex.
func Attribute(v uint64) string { return lookup(attributes, v) }

// Mechanism names a CKM_ value, or gives it in hex.
func Mechanism(v uint64) string { return lookup(mechanisms, v) }

// Class names a CKO_ value, or gives it in hex.
func Class(v uint64) string { return lookup(classes, v) }

// KeyType names a CKK_ value, or gives it in hex.
func KeyType(v uint64) string { return lookup(keyTypes, v) }

// Code names a CKR_ value, or gives it in hex.
func Code(v uint64) string { return lookup(codes, v) }
