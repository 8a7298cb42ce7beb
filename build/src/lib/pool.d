build/src/lib/pool.o: src/lib/pool.c src/lib/pool.h src/lib/buf.h \
 src/lib/mem.h
src/lib/pool.h:
src/lib/buf.h:
src/lib/mem.h:
