# The two commands of the README's quick start:
#   make demo   boot a throwaway VM into maintenance mode and back
#   make test   the whole test suite (installs what it needs)
.PHONY: demo test build install bench check deb

demo:
	tests/vm/demo.sh

test:
	scripts/test.sh

build:
	scripts/build-release.sh

# The Debian package target/debian/umm_<version>_<arch>.deb (scripts/deb.sh; checked by scripts/check-deb.sh).
deb:
	scripts/deb.sh

install: build
	scripts/install.sh --destdir "$(DESTDIR)"

bench:
	bench/generator.sh

check:
	cargo fmt --all -- --check
	cargo clippy --all-targets --workspace -- -D warnings
	cargo test --workspace
