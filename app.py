"""The studio's server: Streamlit's own (``st.App``) serving ``Home.py``, plus the sign-in page
and the gate in front of the pages (``views/signin.py``). ``python -m runner up`` starts it with
``streamlit run app.py``."""

import streamlit as st
from starlette.middleware import Middleware

from views.signin import ROUTES, SignInGate

app = st.App("Home.py", routes=ROUTES, middleware=[Middleware(SignInGate)])
