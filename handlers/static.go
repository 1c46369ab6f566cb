package handlers

import (
	"io/fs"
	"net/http"
)

// StaticFiles serves the files of fsys, and nothing for a folder: no listing
// of what the binary embeds, a 404 instead.
func StaticFiles(fsys fs.FS) http.Handler {
	return http.FileServerFS(filesOnly{fsys})
}

// filesOnly is an fs.FS whose folders do not exist.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}
