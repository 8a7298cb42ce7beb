/* version.h: the yizhan release, shown by `yizhan --version` and `status`. */
#ifndef YZ_VERSION_H
#define YZ_VERSION_H
#define YZ_VERSION "0.1.0"
#endif
