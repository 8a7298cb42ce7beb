build/src/cli/main.o: src/cli/main.c src/cli/cli.h src/lib/buf.h \
 src/lib/config.h src/lib/config_params.h src/lib/ipc_msg.h \
 src/lib/config_load.h src/lib/log.h src/lib/version.h \
 src/master/master.h
src/cli/cli.h:
src/lib/buf.h:
src/lib/config.h:
src/lib/config_params.h:
src/lib/ipc_msg.h:
src/lib/config_load.h:
src/lib/log.h:
src/lib/version.h:
src/master/master.h:
