from accessd.cli import main

raise SystemExit(main())
