from musicbox.cli import main

raise SystemExit(main())
