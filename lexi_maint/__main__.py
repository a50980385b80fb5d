from lexi_maint.cli.main import main

raise SystemExit(main())
