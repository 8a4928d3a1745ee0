// Debian libpq-dev's header, by its path (`pg_config --includedir`): the target takes no pkg-config flags, whose
// `-lpq` would link libpq into tokenvault (see Package.swift). Its own includes (postgres_ext.h, pg_config_ext.h)
// are found beside it.
#include "/usr/include/postgresql/libpq-fe.h"
