# `make test` is the one test command (README, .ci/run). It installs what the tests need (cached
# outside the clone), checks formatting and lints, starts one shared etcd + kube-apiserver for the
# whole run, runs every test, and stops the servers whatever happened. Its last stage is `make e2e`:
# the chart installed by helm into a real node (.ci/e2e.sh; root, one node per machine).
.PHONY: test deps lint crds bench e2e image-test

test:
	bash .ci/test.sh

# The chart on a real single-node Kubernetes: helm install, reconcile, upgrade, uninstall.
e2e:
	bash .ci/e2e.sh

# The same, with the image `helm upgrade` moves to built by the project's real Dockerfile (buildah,
# --pull=never, locally made base images): a cold release build inside the image, ~8-10 min.
image-test:
	E2E_DOCKERFILE=1 bash .ci/e2e.sh

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
