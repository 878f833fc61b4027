from musesynth.cli import main

raise SystemExit(main())
