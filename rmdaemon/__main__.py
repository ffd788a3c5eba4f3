from rmdaemon.cli import main

raise SystemExit(main())
