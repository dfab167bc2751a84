package file

// Internals for the external tests (package file_test).

// LockDir, NumStripes and TempPrefix are the lock directory, the number of
// lock files in it and the prefix of temporary files.
const (
	LockDir    = lockDir
	NumStripes = numStripes
	TempPrefix = tempPrefix
)

// ObjectPath returns the path of name's object file relative to the store's
// directory, "/"-separated.
func ObjectPath(name string) string { return objectPath(name) }

// ObjectFile returns the path of name's object file.
func (d *Driver) ObjectFile(name string) string { return d.path(name) }
