from precache.cli import main

main()
