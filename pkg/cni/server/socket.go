package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	// socketMode keeps the socket root-only: whoever can connect can attach interfaces to Pods.
	socketMode fs.FileMode = 0o600
	// socketDirMode is the mode of the socket's directory when the server has to create it.
	socketDirMode fs.FileMode = 0o700
	// maxSocketPathLen is the room in sockaddr_un.sun_path, less its terminating NUL.
	maxSocketPathLen = 107
	// liveSocketProbeTimeout bounds the connect that tells a stale socket from a live one.
	liveSocketProbeTimeout = time.Second
)

// listenUnix creates the socket at path, mode 0600, in a directory created with mode 0700 when
// missing, replacing a stale socket left by a process that died. It refuses to replace anything
// that is not a socket, and a socket that another process still serves.
//
// The socket is bound under a temporary name, restricted to 0600 and then renamed into place, so
// that path never exists with looser permissions and a stale socket is replaced atomically. It
// returns the file's identity too, so that the server removes the socket on stop only if it is
// still its own.
func listenUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("socket path %q is not absolute", path)
	}
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+randomSuffix())
	if longest := max(len(path), len(tmp)); longest > maxSocketPathLen {
		return nil, nil, fmt.Errorf("socket path %q is too long: a unix socket path has at most %d bytes, "+
			"and the server binds first to %q (%d bytes)", path, maxSocketPathLen, tmp, len(tmp))
	}
	if err := os.MkdirAll(dir, socketDirMode); err != nil {
		return nil, nil, fmt.Errorf("create socket directory %s: %w", dir, err)
	}
	if err := checkReplaceable(path); err != nil {
		return nil, nil, err
	}

	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", tmp, err)
	}
	// The file is renamed below, so closing must not unlink by the old name; Stop removes it.
	listener.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		_ = listener.Close()
		_ = os.Remove(tmp)
		return nil, nil, err
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(fmt.Errorf("restrict socket %s to mode %o: %w", tmp, socketMode, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("move socket %s to %s: %w", tmp, path, err))
	}
	info, err := os.Lstat(path)
	if err != nil {
		_ = listener.Close()
		return nil, nil, fmt.Errorf("stat socket %s: %w", path, err)
	}
	return listener, info, nil
}

// checkReplaceable returns nil when nothing is at path or when path is a socket nobody serves.
func checkReplaceable(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket path %s: %w", path, err)
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("socket path %s exists and is not a socket (mode %s): refusing to replace it", path, info.Mode())
	}
	conn, err := net.DialTimeout("unix", path, liveSocketProbeTimeout)
	if err != nil {
		return nil // stale: left behind by a process that is gone
	}
	_ = conn.Close()
	return fmt.Errorf("socket %s is served by another process: is another antrea-agent running with the same socket?", path)
}

// removeIfSame removes path only if it is still the file described by info.
func removeIfSame(path string, info os.FileInfo) error {
	current, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket %s: %w", path, err)
	}
	if !os.SameFile(current, info) {
		return nil // another server has taken the path over since
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove socket %s: %w", path, err)
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
