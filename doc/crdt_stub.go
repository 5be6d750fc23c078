//go:build nocrdt

package doc

// newCRDTEngine stands in for the crdt package while it is being written
// (build with -tags nocrdt); only the tests' fake engine works then.
func newCRDTEngine() engine { panic("doc: built with -tags nocrdt") }
