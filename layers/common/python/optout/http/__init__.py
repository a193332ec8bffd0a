"""The HTTP edge shared by the two API functions (capture and admin).

What every route needs before and after the domain runs, in one home: the raw-body gate that
runs on the API Gateway event before anything parses it (`raw_body`), the one error envelope and
the words it uses (`answers`), and what a request tells us about its transport (`context`).
The domain modules beside this package never see an HTTP event.
"""
