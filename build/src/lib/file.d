build/src/lib/file.o: src/lib/file.c src/lib/file.h src/lib/mem.h
src/lib/file.h:
src/lib/mem.h:
