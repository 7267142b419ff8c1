# test/fuzz/fuzz.mk - libFuzzer targets for the core parsers (included by
# apxs.mk; uses its CORE_SRC, PS_HDR, WARN, APR_CFLAGS, APR_LIBS, BUILD).
#
#   make fuzz          each fuzzer for FUZZ_TIME seconds (default 60), growing
#                      test/fuzz/corpus/<target>/
#   make fuzz-smoke    replay the whole corpus, then each fuzzer ~5 s (make test)
#   make fuzz-merge    minimize test/fuzz/corpus/<target>/ (-merge=1)
#   make fuzz-build    only build $(BUILD)/fuzz/fuzz_<target>
# FUZZ_TARGETS=path ... restricts the set; FUZZ_CC picks the compiler.

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 60
FUZZ_TARGETS ?= websocket wstrack path template headers stats http1 store jwt redis
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -g -O1
FUZZ_BIN     := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
# The core is compiled once with coverage instrumentation, linked into all.
FUZZ_OBJ     := $(patsubst mod_pushstream/%.c,$(FUZZ_DIR)/obj/%.o,$(CORE_SRC))

.PHONY: fuzz fuzz-smoke fuzz-merge fuzz-build
.SECONDARY: $(FUZZ_OBJ)

$(FUZZ_DIR)/obj/%.o: mod_pushstream/%.c $(PS_HDR) test/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	    $(APR_CFLAGS) -Imod_pushstream -Imod_pushstream/common -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: test/fuzz/fuzz_%.c $(wildcard test/fuzz/*.h) $(FUZZ_OBJ) $(PS_HDR)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) -std=gnu11 $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer $(APR_CFLAGS) \
	    -Imod_pushstream -Imod_pushstream/common -Itest/fuzz -o $@ $< $(FUZZ_OBJ) \
	    $(APR_LIBS) -lpthread -lcrypto -lm

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@bash test/fuzz/run.sh run $(FUZZ_TIME) $(FUZZ_DIR) $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_BIN)
	@bash test/fuzz/run.sh smoke 5 $(FUZZ_DIR) $(FUZZ_TARGETS)

fuzz-merge: $(FUZZ_BIN)
	@bash test/fuzz/run.sh merge 0 $(FUZZ_DIR) $(FUZZ_TARGETS)
