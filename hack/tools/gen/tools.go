// Package gen only exists so that this module has a package; the generators are `tool` lines in go.mod.
package gen
