# The real rules live in apxs.mk (the product's layout); this file only lets
# plain `make run` / `make test` find them.
include apxs.mk
