# yizhan build. Targets:
#   make            build build/yizhan (warnings are errors)
#   make test       install missing packages, build, run unit + integration tests
#   make check      make test, then the same tests under ASan+UBSan (the README's test command)
#   make asan       build and test with AddressSanitizer + UBSan in build-asan/
#   make valgrind   unit tests under valgrind
#   make fuzz       build the libFuzzer targets (clang) in build-fuzz/
#   make fuzz-run   run each fuzzer FUZZ_SECONDS (default 30)
#   make run        install missing packages, build, init and start a dev instance
#   make install    install into $(DESTDIR)$(PREFIX)
#   make lint       cppcheck over src/
#   make bench      see bench/README.md

CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
PYTHON   ?= /usr/bin/python3
SANITIZE ?=

WARN     = -Wall -Wextra -Werror -Wformat=2 -Wvla -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
HARDEN   = -fstack-protector-strong -fPIE -D_FORTIFY_SOURCE=2
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
ALLCFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) $(SANITIZE) -Isrc -MMD -MP
LDFLAGS  ?=
ALLLDFLAGS = -pie -Wl,-z,relro,-z,now $(SANITIZE) $(LDFLAGS)
LIBS     = -lssl -lcrypto -lsqlite3 -largon2 -lcrypt -lm

# Every .c under src/ is library code except the program entry points.
MAINS    = src/cli/main.c
LIB_SRCS = $(filter-out $(MAINS),$(shell find src -name '*.c' | sort))
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBA     = $(BUILD)/libyizhan.a

UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PROGS    = $(BUILD)/yizhan

.PHONY: all test check asan asan-test unit integration valgrind fuzz fuzz-run run install lint clean deps docs bench
all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALLCFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/yizhan: $(BUILD)/src/cli/main.o $(LIBA)
	@echo "  LD      $@"
	@$(CC) $(ALLLDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBA)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(ALLCFLAGS) -Itests/unit -o $@ $< $(LIBA) $(ALLLDFLAGS) $(LIBS) -lcmocka

deps:
	@scripts/deps

unit: $(UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS)

integration: $(PROGS)
	YZ_BIN=$(abspath $(BUILD)/yizhan) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory integration

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		all unit integration

check: test
	@$(MAKE) --no-print-directory asan

valgrind: $(UNIT_BINS)
	@VALGRIND=1 scripts/run-unit $(UNIT_BINS)

FUZZ_SRCS = $(sort $(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT=-O1 \
		SANITIZE="-fsanitize=fuzzer-no-link,address,undefined" \
		$(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/fuzz/%)

FUZZ_SECONDS ?= 30
fuzz-run: fuzz
	@for f in $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/fuzz/%); do \
		echo "== $$f ($(FUZZ_SECONDS) s)"; \
		mkdir -p build-fuzz/corpus/$$(basename $$f); \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus/$$(basename $$f) 2>&1 | tail -1 || exit 1; \
	done

build-fuzz/fuzz/%: tests/fuzz/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBA) $(ALLLDFLAGS) $(LIBS)

run: deps all
	@scripts/dev-run

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/yizhan
	install -m 0755 $(BUILD)/yizhan $(DESTDIR)$(PREFIX)/sbin/yizhan
	install -m 0644 etc/yizhan.conf $(DESTDIR)$(PREFIX)/share/doc/yizhan/yizhan.conf.example
	install -m 0644 etc/yizhan.service $(DESTDIR)$(PREFIX)/share/doc/yizhan/yizhan.service
	install -m 0644 README.md SECURITY.md INTERNALS.md $(DESTDIR)$(PREFIX)/share/doc/yizhan/

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--suppress=missingIncludeSystem --inline-suppr -Isrc -D_GNU_SOURCE src

docs: $(BUILD)/yizhan
	$(BUILD)/yizhan config --doc > docs/configuration.md

bench:
	@cat bench/README.md

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(BUILD)/src/cli/main.d
