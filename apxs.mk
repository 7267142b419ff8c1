# apxs.mk - builds mod_pushstream and mod_pushstream_wstunnel with Debian's apxs,
# the C unit tests, and drives the test/demo targets.
#
#   make            build both modules (warnings are errors)
#   make run        install deps, build, start the demo httpd on 127.0.0.1; prints the
#                   demo page's URL first (clients/demo/ at /), then curl lines
#   make stop       stop the demo httpd
#   make test       install deps, build, run unit + integration tests twice
#                   (normal, then ASan+UBSan in .build-san; SANITIZE=0|1 = one
#                   pass only), print "N passed, N failed"
#   make unit       C unit tests only (no httpd)
#   make install    modules into the httpd module dir, conf.d/pushstream{,_wstunnel}.{load,conf}
#                   into mods-available (then: a2enmod pushstream)
#   make deb        libapache2-mod-pushstream_<version>_<arch>.deb with Debian's
#                   tools (build/debian/, build/deb.sh) into DEB_DIR (.build/deb),
#                   then lintian (fails on errors)
#   make SANITIZE=1 ...   AddressSanitizer + UBSan build
#   make bench      install bench-only deps (nginx + nchan, wrk, gnuplot), run
#                   bench/bench.py against nginx+nchan (BENCH_ARGS=--quick ...)
#   make loadgen    build the load generator (bench/loadgen.c)
#   make loadgen-smoke  the load generator once at tiny scale (part of make test)
#   make fuzz       libFuzzer targets (test/fuzz/), each FUZZ_TIME s (default 60)
#   make fuzz-smoke replay the fuzz corpus + each fuzzer ~5 s (part of make test)

APXS      ?= apxs
CC        ?= gcc
PYTHON    ?= /usr/bin/python3
BUILD     ?= $(CURDIR)/.build
SANITIZE  ?=
# extra compiler/linker flags (the Debian package passes dpkg-buildflags' hardening)
EXTRA_CFLAGS  ?=
EXTRA_LDFLAGS ?=
DEB_DIR   ?= $(BUILD)/deb

# mod_pushstream/common/: the shared core (psc_*), compiled into both
# modules; only each module's *_module symbol leaves its .so.
COMMON_SRC := $(sort $(wildcard mod_pushstream/common/*.c))
COMMON_HDR := $(wildcard mod_pushstream/common/*.h)
PS_SRC    := $(sort $(wildcard mod_pushstream/*.c)) $(COMMON_SRC)
PS_HDR    := $(wildcard mod_pushstream/*.h) $(COMMON_HDR)
WT_SRC    := $(sort $(wildcard mod_pushstream_wstunnel/*.c)) $(COMMON_SRC)
WT_HDR    := $(wildcard mod_pushstream_wstunnel/*.h) $(COMMON_HDR)

# Core files: no httpd types, unit-tested without a server.  psc_conn.c
# (the suspended connection's hand-over and end) is the one shared file
# with httpd types.
COMMON_HTTPD := mod_pushstream/common/psc_conn.c
CORE_SRC  := $(filter-out $(COMMON_HTTPD),$(COMMON_SRC)) mod_pushstream/ps_store.c mod_pushstream/ps_alloc.c mod_pushstream/ps_path.c \
             mod_pushstream/ps_template.c mod_pushstream/ps_util.c \
             mod_pushstream/ps_info.c mod_pushstream/ps_eventsource.c \
             mod_pushstream/ps_http1.c mod_pushstream/ps_escape.c \
             mod_pushstream/ps_encode.c \
             mod_pushstream/ps_json.c mod_pushstream/ps_jwt.c \
             mod_pushstream/ps_redis_url.c mod_pushstream/ps_redis_rec.c \
             mod_pushstream/ps_nameset.c

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
ifeq ($(SANITIZE),1)
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1 -g
else
SANFLAGS  :=
OPT       := -O2 -g
endif

APXS_CFLAGS := $(foreach f,$(WARN) $(OPT) $(SANFLAGS) -std=gnu11 $(EXTRA_CFLAGS),-Wc,$(f))
APXS_LFLAGS := $(foreach f,$(SANFLAGS) $(EXTRA_LDFLAGS),-Wl,$(f))
# only *_module leaves each .so (the shared core must not bind across them)
APXS_LFLAGS += -Wl,-Wl,--version-script=$(CURDIR)/mod_pushstream/common/psc_exports.map

PS_SO     := $(BUILD)/mod_pushstream.so
WT_SO     := $(BUILD)/mod_pushstream_wstunnel.so

APR_CFLAGS := $(shell apr-1-config --cflags --cppflags --includes 2>/dev/null) \
              $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS   := $(shell apr-1-config --link-ld --libs 2>/dev/null) \
              $(shell apu-1-config --link-ld 2>/dev/null)

UNIT_SRC  := $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN  := $(patsubst test/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

LOADGEN   := $(BUILD)/bench/loadgen
TLSFLOOR  := $(BUILD)/bench/tlsfloor
BENCH_ARGS ?=

.PHONY: all modules deps run stop test unit integration install clean bench loadgen \
        loadgen-smoke deb

all: modules

modules: $(PS_SO) $(WT_SO)

# apxs/libtool writes its objects beside the sources; build from a copy so
# the tree stays clean and SANITIZE builds do not mix with normal ones.
$(PS_SO): $(PS_SRC) $(PS_HDR) apxs.mk mod_pushstream/common/psc_exports.map
	@mkdir -p $(BUILD)/ps
	@rm -rf $(BUILD)/ps/* && cp $(PS_SRC) $(PS_HDR) $(BUILD)/ps/
	@cd $(BUILD)/ps && $(APXS) -c $(APXS_CFLAGS) $(APXS_LFLAGS) -lpthread -lssl -lcrypto -lhiredis \
	    -o mod_pushstream.la $(notdir $(PS_SRC)) >build.log 2>&1 || { cat build.log; exit 1; }
	@grep -E 'warning:|error:' $(BUILD)/ps/build.log || true
	cp $(BUILD)/ps/.libs/mod_pushstream.so $@

# ps_tls.c (the loops take mod_ssl's sessions; httpd types, so not in the
# httpd-free common/) is compiled into mod_pushstream_wstunnel too
WT_SHARED := mod_pushstream/ps_tls.c
$(WT_SO): $(WT_SRC) $(WT_HDR) $(WT_SHARED) mod_pushstream/ps_tls.h apxs.mk \
          mod_pushstream/common/psc_exports.map
	@mkdir -p $(BUILD)/wt
	@rm -rf $(BUILD)/wt/* && cp $(WT_SRC) $(WT_HDR) $(WT_SHARED) mod_pushstream/ps_tls.h $(BUILD)/wt/
	@cd $(BUILD)/wt && $(APXS) -c $(APXS_CFLAGS) $(APXS_LFLAGS) -lssl -lcrypto \
	    -o mod_pushstream_wstunnel.la $(notdir $(WT_SRC) $(WT_SHARED)) >build.log 2>&1 || { cat build.log; exit 1; }
	@grep -E 'warning:|error:' $(BUILD)/wt/build.log || true
	cp $(BUILD)/wt/.libs/mod_pushstream_wstunnel.so $@

deps:
	@bash build/deps.sh

# test/fuzz/*.h: the JSON check and the store model are shared with the fuzzers
$(BUILD)/unit/%: test/unit/%.c $(CORE_SRC) $(PS_HDR) $(wildcard test/unit/*.h test/fuzz/*.h)
	@mkdir -p $(BUILD)/unit
	$(CC) -std=gnu11 $(WARN) -g -O1 $(SANFLAGS) $(APR_CFLAGS) -Imod_pushstream \
	    -Imod_pushstream/common -Itest/unit \
	    -o $@ $< $(CORE_SRC) $(APR_LIBS) -lcmocka -lpthread -lcrypto -lm $(UNIT_LDFLAGS)

# test_heap makes realloc() fail on demand.
$(BUILD)/unit/test_heap: UNIT_LDFLAGS := -Wl,--wrap=realloc

unit: $(UNIT_BIN)
	@bash test/run-unit.sh $(UNIT_BIN)

# Two passes (test/run-all.sh): normal into .build, then ASan+UBSan into
# .build-san; SANITIZE=0 / SANITIZE=1 run only the one pass.
test: deps
	@SANITIZE=$(SANITIZE) bash test/run-all.sh

integration: modules
	@PS_BUILD=$(BUILD) $(PYTHON) -m pytest -q -p no:cacheprovider test/modules

run: deps
	@$(MAKE) --no-print-directory modules
	@cd test && PS_BUILD=$(BUILD) $(PYTHON) -m pyhttpd run

stop:
	@cd test && PS_BUILD=$(BUILD) $(PYTHON) -m pyhttpd stop

install: modules
	install -m 644 $(PS_SO) $(WT_SO) $$($(APXS) -q LIBEXECDIR)/
	install -m 644 conf.d/pushstream.load conf.d/pushstream.conf /etc/apache2/mods-available/
	install -m 644 conf.d/pushstream_wstunnel.load conf.d/pushstream_wstunnel.conf /etc/apache2/mods-available/
	@echo "now: a2enmod pushstream && apachectl configtest && apachectl graceful"

# The Debian package: a copy of the project with build/debian/ as its debian/,
# dpkg-buildpackage -b there (the .deb lands in DEB_DIR), then lintian.
deb: deps
	@bash build/deb.sh "$(DEB_DIR)"

# the load generator frames WebSocket messages with the modules' own codec
$(LOADGEN): bench/loadgen.c mod_pushstream/common/ps_websocket.c \
            mod_pushstream/common/ps_websocket.h apxs.mk
	@mkdir -p $(BUILD)/bench
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror $(APR_CFLAGS) -Imod_pushstream/common \
	    -o $@ bench/loadgen.c mod_pushstream/common/ps_websocket.c $(APR_LIBS) -lssl -lcrypto

loadgen: $(LOADGEN) $(TLSFLOOR)

# the idle TLS session floor of make bench (bench/tlsfloor.c)
$(TLSFLOOR): bench/tlsfloor.c apxs.mk
	@mkdir -p $(BUILD)/bench
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ bench/tlsfloor.c -lssl -lcrypto

loadgen-smoke: modules loadgen
	@PS_BUILD=$(BUILD) $(PYTHON) -m pytest -q -p no:cacheprovider test/modules/project/test_loadgen.py

bench: deps
	@bash build/deps.sh --bench
	@$(MAKE) --no-print-directory modules loadgen
	@$(PYTHON) bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)

include test/fuzz/fuzz.mk
