# idptoken-operator
#
# `make demo` runs the whole operator locally; `make test` runs every test against a real
# kube-apiserver and etcd. Every tool is installed into bin/ at a pinned version on first use.

IMG ?= ghcr.io/idptoken/idptoken-operator:latest

# Tool versions, pinned.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.6.16

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

export GOTOOLCHAIN ?= local

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)-$(shell go env GOOS)-$(shell go env GOARCH)
KUBECTL ?= $(ENVTEST_ASSETS)/kubectl

GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the markers in api/ and internal/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply its fixes.
	$(GOLANGCI_LINT) run --fix ./...

.PHONY: test
test: manifests generate vet envtest-assets $(KUSTOMIZE) ## Run all tests (unit, envtest integration, kustomize overlays, demo smoke test).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test -timeout=25m ./... $(GO_TEST_FLAGS)

# BENCH_SCALE=small (default, a few minutes) or full (the workloads of the README's
# Performance table, about half an hour). See test/bench/table for the other BENCH_* settings.
BENCH_SCALE ?= small

.PHONY: bench
bench: envtest-assets ## Measure bin/manager as its own process against a local control plane and the simulated Auth0; print one table.
	go build -o bin/manager ./cmd
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" BENCH_SCALE="$(BENCH_SCALE)" BENCH_MANAGER="$(CURDIR)/bin/manager" go run ./test/bench/table

.PHONY: bench-inprocess
bench-inprocess: envtest-assets ## Run the Go benchmarks (the manager inside the test process) and print their figures.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test -run='^$$' -bench=. -benchtime=1x ./...

.PHONY: check-generated
check-generated: manifests generate chart-sync ## Fail when generated files (CRDs, RBAC, deepcopy, the chart's copies) are out of date.
	@if [ -n "$$(git status --porcelain -- config/crd config/rbac api dist/chart/files)" ]; then \
		echo "Generated files are out of date; run 'make manifests generate chart-sync' and commit:"; \
		git status --porcelain -- config/crd config/rbac api dist/chart/files; git --no-pager diff -- config/crd config/rbac api dist/chart/files | head -50; exit 1; \
	fi

.PHONY: check-tidy
check-tidy: ## Fail when go.mod or go.sum differ from what `go mod tidy` makes of them (prints the diff; changes nothing).
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy; run 'go mod tidy' and commit."; exit 1; }

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary into bin/manager.
	go build -o bin/manager ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the container image (needs a container engine).
	docker build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image.
	docker push $(IMG)

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the operator (image IMG) to the cluster of the current kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the operator from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Demo

# DEMO_FOR=90s runs headless for that long (for CI) and ends with the line
# "demo: <N> bindings, <R> refreshes, <E> expired, <K> restarts"; empty shows the live view until Ctrl-C.
DEMO_FOR ?=
# Lifetime of the simulated IdP access tokens; empty means 2m live, 45s headless.
DEMO_TOKEN_LIFETIME ?=
# Kubeconfig, logs and the simulator's CA and credentials go here.
DEMO_STATE_DIR ?= $(CURDIR)/.demo

.PHONY: demo
demo: ## Run the operator locally against a simulated Auth0 (live view; DEMO_FOR=90s: headless check). See docs/demo.md.
	@if [ -x "$(ENVTEST_ASSETS)/kube-apiserver" ] && [ -x "$(ENVTEST_ASSETS)/etcd" ] && [ -x "$(KUBECTL)" ]; then \
		echo ">> [1/3] Control plane binaries (kube-apiserver, etcd, kubectl): $(ENVTEST_ASSETS)"; \
	else \
		echo ">> [1/3] Building kube-apiserver, etcd and kubectl from source into $(ENVTEST_ASSETS)."; \
		echo ">>       The first control-plane build takes several minutes; later runs reuse it."; \
		$(MAKE) --no-print-directory envtest-assets; \
	fi
	@echo ">> [2/3] Building bin/manager, bin/auth0-sim and bin/demo ..."
	@go build -o bin/manager ./cmd
	@go build -o bin/auth0-sim ./cmd/auth0-sim
	@go build -o bin/demo ./hack/demo
	@echo ">> [3/3] Starting the demo: local control plane, simulated Auth0, manager"
	@exec bin/demo --repo "$(CURDIR)" --state-dir "$(DEMO_STATE_DIR)" --assets "$(ENVTEST_ASSETS)" \
		--manager bin/manager --for "$(DEMO_FOR)" --token-lifetime "$(DEMO_TOKEN_LIFETIME)"

##@ Tools

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver ## Build kube-apiserver, etcd and kubectl from source into bin/k8s (first time: minutes).

$(ENVTEST_ASSETS)/kube-apiserver $(KUBECTL):
	K8S_VERSION=$(ENVTEST_K8S_VERSION) ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/build-envtest-assets.sh $(ENVTEST_ASSETS)

.PHONY: controller-gen kustomize golangci-lint
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
kustomize: $(KUSTOMIZE) ## Install kustomize into bin/.
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into bin/.

$(CONTROLLER_GEN):
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(KUSTOMIZE):
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

$(GOLANGCI_LINT):
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool installs a Go tool at a pinned version into bin/ as <name>-<version>, linked as <name>.
# $1 target path with version suffix, $2 package, $3 version
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo ">> Installing $${package} into $(LOCALBIN)" ;\
mkdir -p $(LOCALBIN) ;\
rm -f "$$(echo "$(1)" | sed "s/-$(3)$$//")" ;\
GOBIN=$(LOCALBIN) go install $${package} ;\
mv "$$(echo "$(1)" | sed "s/-$(3)$$//")" $(1) ;\
} ;\
ln -sf "$$(basename $(1))" "$$(echo "$(1)" | sed "s/-$(3)$$//")"
endef

##@ Helm chart (dist/chart)

HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CHART_DIR ?= dist/chart

.PHONY: chart-sync
chart-sync: manifests ## Copy the generated CRDs and the manager's RBAC rules into the Helm chart (test/chart fails on drift).
	rm -f $(CHART_DIR)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/files/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/rbac/role.yaml

.PHONY: chart-lint
chart-lint: $(HELM) ## Lint the Helm chart.
	$(HELM) lint --strict --kube-version $(ENVTEST_K8S_VERSION) $(CHART_DIR)

.PHONY: helm
helm: $(HELM) ## Install helm into bin/.

$(HELM):
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

# The chart's tests (test/chart) run helm from bin/.
test: $(HELM)
