from lexi_maint.cli import main

raise SystemExit(main())
