from accessd.cli.main import main

raise SystemExit(main())
