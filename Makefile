# derl: distributed Erlang for Emacs.
#
#   make          build the module (module/derl-module.so)
#   make test     C unit tests (ASan+UBSan), fuzz smoke run, ERT suites
#   make test-matrix   make test in Debian 13, and the node suites against
#                 the OTP of Debian 11, 12, 13 and unstable (root; chroots)
#   make demo     show derl at work against a local Erlang node
#   make demo-interactive   the same, left open in a terminal Emacs
#   make bench    speed, as ratios against references in the same run
#   make fuzz     the long fuzz run (FUZZ_SECONDS, default 600)
#   make package  a package.el tarball, build/derl-VERSION.tar
#   make info     the manual, doc/derl.info (C-h i m derl)
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

EMACS    ?= emacs
ERL      ?= erl
ERLC     ?= erlc
CC       ?= cc
CLANG    ?= clang

CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror
LIBS     := -lssl -lcrypto -lz -pthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
# The tests and fuzz targets get what only they use (etf_validate,
# tls_version); the module does without.
TESTING  := -DDERL_TESTING

MODULE   := module/derl-module.so
CORE_SRC := module/etf.c module/etf_print.c
NET_SRC  := module/digest.c module/epmd.c module/handshake.c module/dist.c \
            module/transport.c module/session.c module/node_state.c \
            module/node_events.c module/node_table.c module/node_io.c \
            module/node_resolve.c module/node_listen.c module/node_dial.c \
            module/node_wait.c module/node.c module/tls.c \
            module/stamps.c
MOD_SRC  := $(CORE_SRC) $(NET_SRC) module/elisp.c module/lispterm_decode.c \
            module/lispterm_encode.c module/derl_module.c
HEADERS  := $(wildcard module/*.h)

BUILD    := build
ERL_SRC  := $(wildcard test/erl/*.erl)
ERL_BEAM := $(patsubst test/erl/%.erl,$(BUILD)/ebin/%.beam,$(ERL_SRC))

FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 30

.PHONY: all module lisp info test test-run test-c test-fuzz test-ert test-matrix demo \
        demo-interactive bench fuzz deps clean

all: module lisp info

module: deps-build $(MODULE)

$(MODULE): $(MOD_SRC) $(HEADERS) | deps-build
	$(CC) $(CFLAGS) $(WARN) -std=gnu11 -fPIC -shared -fvisibility=hidden \
	  -Wl,--exclude-libs,ALL -o $@ $(MOD_SRC) $(LIBS)

# Check for the tools and headers; install what is missing when root.
deps-build:
	@sh test/deps.sh build
deps:
	@sh test/deps.sh all

$(BUILD)/ebin/%.beam: test/erl/%.erl
	@mkdir -p $(BUILD)/ebin
	$(ERLC) -o $(BUILD)/ebin $<

# ---- tests

$(BUILD)/test_etf: test/c/test_etf.c test/c/check.h $(CORE_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -O1 -g $(WARN) -std=gnu11 $(SAN) $(TESTING) -Imodule -o $@ \
	  test/c/test_etf.c $(CORE_SRC) -lz

$(BUILD)/fuzz_etf: test/fuzz/fuzz_etf.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CLANG) -O1 -g -std=gnu11 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all $(TESTING) -Imodule -o $@ \
	  test/fuzz/fuzz_etf.c $(CORE_SRC) -lz

$(BUILD)/test_proto: test/c/test_proto.c test/c/check.h module/etf.c module/digest.c module/epmd.c module/handshake.c module/dist.c $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -O1 -g $(WARN) -std=gnu11 $(SAN) $(TESTING) -Imodule -o $@ \
	  test/c/test_proto.c module/etf.c module/digest.c module/epmd.c \
	  module/handshake.c module/dist.c -lcrypto -lz

# One connection's protocol, with no socket and no thread (session.c).
SESSION_SRC := module/etf.c module/digest.c module/epmd.c module/handshake.c \
               module/dist.c module/session.c
$(BUILD)/test_session: test/c/test_session.c test/c/check.h $(SESSION_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -O1 -g $(WARN) -std=gnu11 $(SAN) $(TESTING) -Imodule -o $@ \
	  test/c/test_session.c $(SESSION_SRC) -lcrypto -lz

$(BUILD)/test_tls: test/c/test_tls.c test/c/check.h module/tls.c module/tls.h
	@mkdir -p $(BUILD)
	$(CC) -O1 -g $(WARN) -std=gnu11 $(SAN) $(TESTING) -Imodule -o $@ \
	  test/c/test_tls.c module/tls.c -lssl -lcrypto -pthread

$(BUILD)/fuzz_proto: test/fuzz/fuzz_proto.c module/etf.c module/digest.c module/epmd.c module/handshake.c module/dist.c $(HEADERS)
	@mkdir -p $(BUILD)
	$(CLANG) -O1 -g -std=gnu11 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all $(TESTING) -Imodule -o $@ \
	  test/fuzz/fuzz_proto.c module/etf.c module/digest.c module/epmd.c \
	  module/handshake.c module/dist.c -lcrypto -lz

# The module again, under ASan (heap checks only: Emacs's garbage
# collector scans the C stack, which stack redzones would trip) and
# UBSan, for the ERT suites to run against inside Emacs.  gcc and clang
# spell "no stack redzones" differently; test/run-tests.sh preloads the
# sanitizer runtime of the same $(CC), which names the build directory.
ASAN_MODULE := $(BUILD)/asan-$(notdir $(CC))/derl-module.so
ASAN_NO_STACK := $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),\
                   -mllvm -asan-stack=0,--param asan-stack=0)
$(ASAN_MODULE): $(MOD_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(WARN) -std=gnu11 -fPIC -shared -fvisibility=hidden \
	  -fsanitize=address,undefined $(ASAN_NO_STACK) \
	  -fno-omit-frame-pointer -fno-sanitize-recover=all \
	  -o $@ $(MOD_SRC) $(LIBS)

# What the tests need is installed first, then built (in parallel with
# make -j2), then run.
test: deps
	@$(MAKE) --no-print-directory test-run

test-run: module lisp $(BUILD)/test_etf $(BUILD)/fuzz_etf $(BUILD)/test_proto \
          $(BUILD)/test_session $(BUILD)/test_tls $(BUILD)/fuzz_proto \
          $(ASAN_MODULE) $(ERL_BEAM)
	@FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) EMACS=$(EMACS) CC=$(CC) \
	  ASAN_MODULE=$(ASAN_MODULE) sh test/run-tests.sh

test-c: $(BUILD)/test_etf $(BUILD)/test_proto $(BUILD)/test_session \
        $(BUILD)/test_tls
	$(BUILD)/test_etf
	$(BUILD)/test_proto
	$(BUILD)/test_session
	$(BUILD)/test_tls
	sh test/c/layers.sh $(CC)

test-fuzz: $(BUILD)/fuzz_etf
	sh test/fuzz/run.sh --smoke $(BUILD)/fuzz_etf $(FUZZ_SMOKE_SECONDS)

test-ert: module lisp $(ERL_BEAM)
	$(EMACS) -Q --batch -L lisp -L test --eval '(setq load-prefer-newer t)' \
	  -l test/derl-ert.el -f derl-ert-run-batch

# Debian chroots (made and kept in DERL_MATRIX_CACHE, default
# /var/cache/derl-matrix): see test/matrix.sh.
test-matrix: deps module lisp $(ERL_BEAM)
	@EMACS=$(EMACS) bash test/matrix.sh

fuzz: deps $(BUILD)/fuzz_etf
	sh test/fuzz/run.sh $(BUILD)/fuzz_etf $(FUZZ_SECONDS)

# Byte-compile the Lisp, warnings as errors.  Everything loads the .elc
# files with `load-prefer-newer', so an edited .el still wins.
LISP_SRC := $(filter-out lisp/derl-autoloads.el,$(wildcard lisp/*.el))
lisp: module $(LISP_SRC:.el=.elc) lisp/derl-autoloads.el

# The module first (order only: loading erlext.el may build it), and
# each file after the files of lisp/ it requires, whose macros it
# expands: an edit to one recompiles those that use it.
lisp/%.elc: lisp/%.el | $(MODULE)
	@$(EMACS) -Q --batch -L lisp --eval '(setq load-prefer-newer t)' \
	  --eval '(setq byte-compile-error-on-warn t)' \
	  -f batch-byte-compile $<

$(BUILD)/lisp-deps.mk: $(LISP_SRC)
	@mkdir -p $(BUILD)
	@for f in $(LISP_SRC); do \
	  sed -n "s/^(require '\([a-z0-9-]*\)).*/\1/p" $$f | while read d; do \
	    if [ -f lisp/$$d.el ]; then echo "$${f%.el}.elc: lisp/$$d.elc"; fi; \
	  done; \
	done > $@

ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
-include $(BUILD)/lisp-deps.mk
endif

# The autoloads of every ;;;###autoload cookie, with lisp/ put on
# `load-path', as package.el writes them: loading this one file is all
# an init file needs.
lisp/derl-autoloads.el: $(LISP_SRC)
	@rm -f $@
	@$(EMACS) -Q --batch -l package --eval '(setq inhibit-message t)' \
	  --eval '(package-generate-autoloads "derl" "lisp")'

# ---- the manual

# doc/derl.info, and doc/dir, the Info directory that lets C-h i m derl
# find it: package.el puts a package's directory on Info's path when it
# holds a file dir.
info: deps-doc doc/derl.info doc/dir

deps-doc:
	@sh test/deps.sh doc

doc/derl.info: doc/derl.texi
	makeinfo --no-split -o $@ $<

doc/dir: doc/derl.info
	@rm -f $@
	install-info --dir-file=$@ $<

# ---- package

# A tarball for M-x package-install-file: the Lisp, the module's C
# sources and what builds them (this Makefile and test/deps.sh), which
# lisp/derl-module.el runs in the package's directory at first use.
VERSION := $(shell sed -n 's/^;; Version: *//p' lisp/derl.el 2>/dev/null)
PKG     := derl-$(VERSION)

.PHONY: package
package: $(BUILD)/$(PKG).tar

$(BUILD)/$(PKG).tar: $(LISP_SRC) $(wildcard module/*.[ch]) Makefile \
                     test/deps.sh LICENSE README.org doc/derl.info doc/dir
	@rm -rf $(BUILD)/package
	@mkdir -p $(BUILD)/package/$(PKG)/module $(BUILD)/package/$(PKG)/test
	cp $(LISP_SRC) Makefile LICENSE README.org $(BUILD)/package/$(PKG)/
	cp doc/derl.info doc/dir $(BUILD)/package/$(PKG)/
	cp module/*.[ch] $(BUILD)/package/$(PKG)/module/
	cp test/deps.sh $(BUILD)/package/$(PKG)/test/
	@$(EMACS) -Q --batch -l package --visit lisp/derl.el \
	  --eval '(setq desc (package-buffer-info))' \
	  --eval '(package-generate-description-file desc "$(CURDIR)/$(BUILD)/package/$(PKG)/derl-pkg.el")'
	@# Emacs 30 warns of a file that does not say lexical-binding.
	@sed -i '1s/-\*- .* -\*-$$/-*- no-byte-compile: t; lexical-binding: t -*-/' \
	  $(BUILD)/package/$(PKG)/derl-pkg.el
	tar -C $(BUILD)/package --sort=name --owner=0 --group=0 \
	  --numeric-owner -cf $@ $(PKG)
	@rm -rf $(BUILD)/package
	@echo "Wrote $@: M-x package-install-file RET $@"

# ---- demo and bench

demo: deps module lisp $(ERL_BEAM)
	@$(EMACS) -Q --batch -L lisp -L test --eval '(setq load-prefer-newer t)' \
	  -l test/derl-demo.el -f derl-demo-batch

demo-interactive: deps module lisp $(ERL_BEAM)
	$(EMACS) -Q -nw -L lisp -L test --eval '(setq load-prefer-newer t)' \
	  -l test/derl-demo.el -f derl-demo-interactive

bench: deps module lisp $(ERL_BEAM)
	EMACS=$(EMACS) ERL=$(ERL) ERLC=$(ERLC) sh bench/run.sh

clean:
	rm -rf $(BUILD) $(MODULE) lisp/*.elc lisp/derl-autoloads.el bench/corpus \
	  doc/derl.info doc/dir
