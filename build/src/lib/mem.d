build/src/lib/mem.o: src/lib/mem.c src/lib/mem.h
src/lib/mem.h:
