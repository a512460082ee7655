# irp — incident-response and disaster-recovery playbook runner.
#
#   make demo    install what is missing, build, drill the ransomware playbook
#   make check   install what is missing, build, run every test (also under
#                AddressSanitizer + UBSan)
#   make         build ./irp          make deps    install Debian packages
#   make sanitize  tests under ASan+UBSan only     make bench   benchmarks

PKGS      := lua5.4 libcurl libcrypto jansson libuv
TEST_PKGS := cmocka
# pkg-config module : Debian package that provides it.
DEB_MAP   := lua5.4:liblua5.4-dev libcurl:libcurl4-openssl-dev libcrypto:libssl-dev \
             jansson:libjansson-dev libuv:libuv1-dev cmocka:libcmocka-dev

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2 -g
SANFLAGS ?=
WARN    := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
           -Wpointer-arith -Wformat=2 -Wundef -Wwrite-strings -Wno-unused-parameter
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(SANFLAGS) $(WARN) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm $(LDLIBS)

SRCS     := $(wildcard runner/*.c)
LUA_SRCS := $(wildcard runner/*.lua)
OBJS     := $(patsubst runner/%.c,$(BUILD)/obj/%.o,$(SRCS)) $(BUILD)/obj/embedded_lua.o
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps demo check unit e2e sanitize bench soak clean
all: irp

irp: $(BUILD)/irp
	$(Q)cp $< $@

$(BUILD)/irp: $(OBJS)
	@echo "  LINK  $@"
	$(Q)$(CC) $(OPT) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/obj/%.o: runner/%.c $(wildcard include/*.h) | $(BUILD)/obj
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Lua halves of the core are compiled into the binary (as sysbench does).
$(BUILD)/gen/embedded_lua.c: $(LUA_SRCS) | $(BUILD)/gen
	@echo "  EMBED $(LUA_SRCS)"
	$(Q){ echo '/* generated from runner/*.lua by the Makefile; do not edit */'; \
	  echo '#include <stddef.h>'; \
	  for f in $(LUA_SRCS); do n=$$(basename $$f .lua | tr -c 'a-zA-Z0-9_\n' '_'); \
	    echo "const char irp_lua_$${n}[] = {"; od -An -v -tx1 $$f | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo '0x00};'; echo "const size_t irp_lua_$${n}_len = sizeof irp_lua_$${n} - 1;"; done; \
	} > $@

$(BUILD)/obj/embedded_lua.o: $(BUILD)/gen/embedded_lua.c | $(BUILD)/obj
	$(Q)$(CC) $(OPT) $(SANFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	@echo "  TEST  $@"
	$(Q)$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags cmocka 2>/dev/null) -o $@ $< $(LIB_OBJS) \
	  $(LDLIBS_ALL) $(shell pkg-config --libs cmocka 2>/dev/null)

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests:
	$(Q)mkdir -p $@

# Installs the Debian packages whose pkg-config module (or command) is missing.
# postgresql, patroni, etcd-server, openssh-server and sudo are there for the
# plugins' live tests, which start their own servers on loopback: a
# policy-rc.d guard (only if the machine has none) keeps apt from starting the
# system's services while it installs them.
deps:
	$(Q)missing=""; \
	command -v cc >/dev/null || missing="$$missing gcc libc6-dev"; \
	command -v make >/dev/null || missing="$$missing make"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v iptables >/dev/null || missing="$$missing iptables"; \
	command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v patroni >/dev/null && command -v patronictl >/dev/null || missing="$$missing patroni"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v sudo >/dev/null || missing="$$missing sudo"; \
	for pair in $(DEB_MAP); do \
	  pkg-config --exists $${pair%%:*} 2>/dev/null || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	SUDO=""; if [ "$$(id -u)" != 0 ]; then \
	  if command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "deps: not root; run as root: apt-get install$$missing" >&2; exit 1; fi; fi; \
	guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	  printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod 755 /usr/sbin/policy-rc.d; fi; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	rc=$$?; if [ -n "$$guard" ]; then $$SUDO rm -f /usr/sbin/policy-rc.d; fi; exit $$rc

# The main job on embedded defaults: an unattended drill, local state, stdout notifier.
demo: deps
	$(Q)$(MAKE) --no-print-directory irp
	./irp drill playbooks/ransomware.lua --scenario playbooks/scenarios/ransomware-friday-night.lua \
	  --state-dir .irp-demo -v host=web-07

check: deps
	$(Q)$(MAKE) --no-print-directory irp unit e2e
	$(Q)$(MAKE) --no-print-directory sanitize

unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

e2e: irp
	$(Q)IRP=$(CURDIR)/$(BUILD)/irp python3 tests/e2e/run.py

# Everything again under AddressSanitizer and UBSan, in its own build tree.
sanitize:
	$(Q)$(MAKE) --no-print-directory BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" build-san/irp unit-san
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  IRP=$(CURDIR)/build-san/irp IRP_SANITIZED=1 python3 tests/e2e/run.py

unit-san: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t || fail=1; done; exit $$fail

# The crash test with many more SIGKILLs than make check's 50 (KILLS=N).
soak: irp
	$(Q)IRP=$(CURDIR)/$(BUILD)/irp IRP_CRASH_KILLS=$${KILLS:-1000} IRP_CRASH_VERBOSE=1 \
	  python3 tests/e2e/run.py test_crash_kill_resume_loop

bench: irp
	$(Q)for b in bench/*.sh; do [ -f "$$b" ] && sh "$$b"; done; true

clean:
	rm -rf build build-san irp .irp-demo
