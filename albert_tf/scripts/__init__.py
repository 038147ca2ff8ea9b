"""The command-line programs: absl flags in, library calls out. Each module's `entry()` is a console
command of the package (`albert-` + the module name with `-` for `_`, see pyproject.toml) and runs the
same program as the root script of that name."""
