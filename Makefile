# `make test` is the one test command (README, .ci/run). It installs what the tests need (cached
# outside the clone), checks formatting and lints, starts one shared etcd + kube-apiserver for the
# whole run, runs every test, and stops the servers whatever happened.
.PHONY: test deps lint crds bench

test:
	bash .ci/test.sh

deps:
	bash .ci/install-deps.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

crds:
	cargo run --quiet -- crd > crds/seatwarden.yaml
	cp crds/seatwarden.yaml charts/seatwarden/crds/seatwarden.yaml

bench:
	cargo bench
