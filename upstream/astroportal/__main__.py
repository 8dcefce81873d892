from astroportal.cli import main

raise SystemExit(main())
