try:
    from ._main import main
except KeyboardInterrupt:
    # Ctrl-C before the entry point itself is loaded: the same clean exit as later.
    raise SystemExit(130) from None

raise SystemExit(main())
