"""
The demo engagement: a made-up regional broadband and TV provider, Northwind
Fibre, surveyed through the app's own services so ``make run`` shows a working
app with a perception gap worth looking at.

The data is driven by the tables below:

- ``THEMES``: each underlying idea (a theme) belongs to one of the four
  questions, carries many paraphrases per voice (``internal`` for leaders and
  staff, who say "we"; ``customer`` for customers) and the chance that one
  respondent of each group mentions it.
- ``CHANCE_OVERRIDES``: per staff department and customer segment, so the
  departments see different things (the "silo" analysis) and segments differ.
- ``RATING_MIX``: the share of each 1-5 value per group and rating item.
- ``PLANTED``: the gaps planted on purpose; the tests check they show.

Everything random comes from one ``random.Random`` with a fixed seed, so two
fresh databases get the same answers (tokens and join codes stay random: they
come from ``secrets`` in the services).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from random import Random

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import mailing, services
from .models import Engagement, Group, InvitationEmail, QuestionKey, Respondent, Wave, Workspace
from .services import Answers, Contact, ItemInput, RatingInput, SheetDetails

COMPANY = "Northwind Fibre"
ENGAGEMENT_SLUG = "northwind-fibre"
WORKSPACE_NAME = "Demo Consultancy"
USERNAME = "demo"
# Used only when settings.DEBUG is on (local development); otherwise a random one is set.
DEBUG_PASSWORD = "gapsurvey-demo"

SEED = 20250214
LEADERS = 8
CUSTOMERS_INVITED_ANSWERED = 138
CUSTOMERS_OPEN_LINK = 12
INVITATIONS_UNANSWERED = 14
# Of the unanswered invitations, this many were opened (the link clicked) but never completed.
INVITATIONS_OPENED_ONLY = 6
# Of those, this many began answering and stopped.
INVITATIONS_STARTED_ONLY = 2
ITEMS_PER_QUESTION = (1, 4)

STAFF_LINK = Respondent.Channel.STAFF_LINK
PAPER = Respondent.Channel.PAPER

VOICE_OF = {Group.LEADERSHIP: "internal", Group.STAFF: "internal", Group.CUSTOMER: "customer"}


@dataclass(frozen=True)
class Theme:
    """One underlying idea and the many ways people put it."""

    question: str
    chance: dict[str, float]  # group -> chance that one respondent (or staff sheet) mentions it
    internal: tuple[str, ...] = ()  # leaders and staff: "we ..."
    customer: tuple[str, ...] = ()
    tag: str = ""  # competition: good/bad/neutral; continue_start: continue/start

    def phrases(self, group: str) -> tuple[str, ...]:
        return getattr(self, VOICE_OF[group])


S, I, C, CS = QuestionKey.STRENGTHS, QuestionKey.IMPROVEMENTS, QuestionKey.COMPETITION, QuestionKey.CONTINUE_START
L, ST, CU = Group.LEADERSHIP, Group.STAFF, Group.CUSTOMER


THEMES: dict[str, Theme] = {
    # --- What we do well ---------------------------------------------------------
    "fast_response": Theme(
        S,
        {L: 0.75, ST: 0.2, CU: 0.04},
        internal=(
            "We respond to customers quickly",
            "Fast response times",
            "Quick turnaround on customer queries",
            "We get back to people the same day",
            "Our response times are among the best in the industry",
            "Calls answered fast, emails within 24 hours",
            "We're quick to respond when customers contact us",
            "Speed of response to enquiries",
            "Rapid replies to customer emails and messages",
            "We don't keep customers waiting",
            "Short wait times on the phone",
            "Quick to pick up the phone",
            "A responsive support team",
        ),
        customer=(
            "They got back to me quickly when I emailed",
            "quick reply on facebook messenger",
            "Answered the phone fast the one time I called",
            "responded same day to my query",
            "Fast response when I reported a fault",
            "Didn't have to wait long to speak to someone",
            "prompt replies",
        ),
    ),
    "friendly_staff": Theme(
        S,
        {L: 0.7, ST: 0.55, CU: 0.5},
        internal=(
            "Friendly, knowledgeable staff",
            "Our people really know the product",
            "Staff are warm and helpful on the phone",
            "Knowledgeable front-line team",
            "Our agents are friendly and patient with customers",
            "Great people who care about customers",
            "Staff who know broadband and TV inside out",
            "Helpful, polite advisors",
            "The team goes the extra mile for customers",
            "Friendly service from people who know their stuff",
            "Experienced staff who can explain technical things simply",
            "Approachable and knowledgeable colleagues",
        ),
        customer=(
            "Staff are friendly and know what they're talking about",
            "the people on the phone are lovely",
            "Helpful staff once you get through",
            "Knowledgeable support people",
            "The lady I spoke to was really kind and sorted it",
            "friendly helpfull staff",
            "Advisors explain things without jargon",
            "Polite, patient staff",
            "The tech support guy actually knew his stuff",
            "Nice people, they genuinely try to help",
            "staff are great, no complaints there",
            "Whoever answers is always friendly",
            "Good knowledge of the products",
        ),
    ),
    "easy_online_account": Theme(
        S,
        {L: 0.6, ST: 0.1, CU: 0.05},
        internal=(
            "Easy online account management",
            "Our app makes it simple to manage your account",
            "Customers can do everything online",
            "Simple, user-friendly customer portal",
            "The new app is easy to use",
            "Self-service account tools",
            "Customers can pay bills and change packages online in minutes",
            "A slick digital experience",
            "Good online account area",
            "Easy to upgrade online",
        ),
        customer=(
            "The app is handy for checking my bill",
            "easy to pay online",
            "Website account is simple enough",
            "Can change my package online without calling",
            "app is ok for paying",
            "online account is straightforward",
        ),
    ),
    "reliable_network": Theme(
        S,
        {L: 0.5, ST: 0.35, CU: 0.4},
        internal=(
            "Fast, reliable fibre network",
            "Our network is rock solid",
            "Reliable broadband speeds",
            "Quality of the network",
            "Full fibre that actually delivers the speed we sell",
            "Very few outages",
            "Excellent uptime",
            "Great TV picture quality and a reliable connection",
            "The product itself is excellent",
            "A strong, dependable network",
        ),
        customer=(
            "Internet is fast and reliable",
            "Broadband speed is great",
            "the wifi rarely drops",
            "Connection is solid, never had issues streaming",
            "Good speeds for the price",
            "fast internet, works for working from home",
            "TV and broadband work well most of the time",
            "Reliable connection",
            "speeds are what they promised",
            "Gaming is smooth, low lag",
            "Rarely goes down",
            "The fibre is quick",
        ),
    ),
    "local_company": Theme(
        S,
        {L: 0.4, ST: 0.2, CU: 0.2},
        internal=(
            "We're local and part of the community",
            "A local provider, not a faceless corporation",
            "Local knowledge of the area",
            "Customers talk to someone in the region, not overseas",
            "We sponsor local clubs and events",
            "A real community feel",
            "UK call centre staffed by local people",
            "We know our towns and villages",
            "The personal touch of a regional company",
        ),
        customer=(
            "Nice that it's a local company",
            "You talk to someone local, not a call centre abroad",
            "they support local things",
            "Local firm, feels more personal",
            "Based round here which I like",
            "Supporting a local business",
            "Call centre is in the UK",
            "Not one of the big faceless companies",
        ),
    ),
    "skilled_engineers": Theme(
        S,
        {L: 0.2, ST: 0.25, CU: 0.25},
        internal=(
            "Our engineers do a professional install",
            "Skilled, tidy field engineers",
            "High first-time fix rate",
            "Engineers take time to explain the setup",
            "Installations are done properly",
            "Technicians are well trained",
            "Engineers leave the customer's home tidy",
            "We fix faults on the first visit",
            "Good technical skills in the field",
            "The install team are real experts",
        ),
        customer=(
            "Engineer was brilliant, very tidy",
            "installer was friendly and explained everything",
            "Install went smoothly",
            "The engineer knew exactly what he was doing",
            "Technician fixed it first time",
            "great install guy, cleaned up after himself",
            "Engineers are professional",
            "Quick and tidy installation",
            "the engineer sorted my wifi dead spots too",
            "Engineer turned up on time and was polite",
        ),
    ),
    "good_value": Theme(
        S,
        {L: 0.3, ST: 0.15, CU: 0.1},
        internal=(
            "Competitive prices",
            "Good value packages",
            "Great deals for new customers",
            "Attractive broadband and TV bundles",
            "Pricing that beats the big players",
            "Flexible packages to suit every budget",
            "Value for money",
            "Strong introductory offers",
        ),
        customer=(
            "good value for the first year",
            "Cheaper than my old provider",
            "Decent price for the speed",
            "the introductory deal was good",
            "Reasonably priced bundles",
            "Good value",
            "Price was the reason I switched",
        ),
    ),
    "team_spirit": Theme(
        S,
        {L: 0.15, ST: 0.4, CU: 0.0},
        internal=(
            "Colleagues help each other out",
            "Good team spirit",
            "Teams pull together when things go wrong",
            "Supportive team leaders",
            "We genuinely want to help customers",
            "People care about doing a good job",
            "Strong sense of teamwork on the floor",
            "We share tips and knowledge within the team",
            "Everyone mucks in during busy periods",
            "Staff are proud of what we do",
        ),
    ),
    "nothing_stands_out": Theme(
        S,
        {L: 0.0, ST: 0.0, CU: 0.08},
        customer=(
            "nothing really",
            "Can't think of anything",
            "It works, that's about it",
            "not much tbh",
            "Nothing stands out",
            "Hard to say, it's just broadband",
            "n/a",
            "don't know",
        ),
    ),
    # --- What could be improved ----------------------------------------------
    "slow_response": Theme(
        I,
        {L: 0.0, ST: 0.15, CU: 0.5},
        internal=(
            "Our response times slip badly at busy times",
            "The email backlog is days long",
            "Callbacks promised to customers aren't always made",
            "Queue times on the phones are too long",
            "We can't keep up with emails",
            "Customers wait too long for a reply",
            "Hold times at peak are too long",
            "Complaint replies take too long",
            "We're understaffed on the phones in the evenings",
            "Not enough people to answer the queue",
        ),
        customer=(
            "Slow to reply",
            "Waited two weeks for an answer to my email",
            "They take ages to get back to you",
            "on hold for 45 minutes, every time",
            "Never call back when they say they will",
            "response times are awful",
            "Took over a week to answer a simple question",
            "you wait forever on the phone",
            "Emails go unanswered for days",
            "slow to respond to complaints",
            "Had to chase them three times before anyone replied",
            "Long queues on the phone line",
            "promised a callback within 24 hours, got one after 5 days",
            "Live chat says 'we'll get back to you' and nobody does",
            "reply times are shocking",
        ),
    ),
    "app_problems": Theme(
        I,
        {L: 0.0, ST: 0.1, CU: 0.4},
        internal=(
            "The app logs customers out constantly",
            "Lots of calls are about app login problems",
            "Customers struggle with the online account",
            "Password resets generate a lot of calls",
            "The portal doesn't show the same information we see",
            "App reviews are poor",
            "Self-service is clunky so customers ring us instead",
            "The app crashes on older phones",
        ),
        customer=(
            "App keeps logging me out",
            "the app is rubbish, crashes all the time",
            "Can't log in to my account half the time",
            "Password reset never works",
            "Website account area is clunky and slow",
            "app logs me out every time I open it",
            "Online account doesn't show my latest bill",
            "Can't do anything useful in the app, have to ring",
            "app is buggy",
            "Keeps asking me to sign in again",
            "The website times out before I finish",
            "Online portal is confusing, took ages to find anything",
            "loging in is a nightmare",
        ),
    ),
    "billing_surprises": Theme(
        I,
        {L: 0.0, ST: 0.3, CU: 0.5},
        internal=(
            "Customers get a shock when their discount ends",
            "Price rise letters go out too late",
            "Bills are hard for customers to understand",
            "A lot of calls are about unexpected charges",
            "Customers aren't warned before price changes",
            "Billing errors take too long to fix",
            "Refunds take weeks to process",
            "The bill layout confuses people",
            "Customers feel tricked at the end of their contract",
            "We don't explain price rises well enough",
        ),
        customer=(
            "Price went up without any warning",
            "Billing surprises",
            "bill jumped after the first year and nobody told me",
            "Unexpected charges on my bill",
            "Price rises every year, never explained",
            "got charged for a channel I never ordered",
            "Bills are confusing, can't tell what I'm paying for",
            "The end of my deal doubled my price, sneaky",
            "hidden fees",
            "Charged twice one month, took ages to get a refund",
            "No heads up before prices change",
            "mid-contract price rise is a joke",
            "Bill is different every month",
            "Wasn't told the discount would end",
        ),
    ),
    "passed_around": Theme(
        I,
        {L: 0.0, ST: 0.2, CU: 0.35},
        internal=(
            "Customers get passed between teams",
            "Too many transfers between departments",
            "Customers have to repeat themselves",
            "Nobody owns a complaint from start to finish",
            "Customers get different answers from different teams",
            "Transfers lose the customer's history",
        ),
        customer=(
            "Passed between departments",
            "Got transferred four times and had to repeat myself each time",
            "Nobody owns the problem",
            "sales said one thing, support said another",
            "Every time I call I explain it all over again",
            "bounced from billing to tech support and back",
            "They pass you around",
            "No one takes responsibility, always another team's job",
            "Had to tell my story to five different people",
            "departments don't talk to each other",
            "transfered and then cut off",
            "Different answers depending on who you speak to",
        ),
    ),
    "missed_appointments": Theme(
        I,
        {L: 0.05, ST: 0.15, CU: 0.12},
        internal=(
            "Missed engineer appointments",
            "Too many appointments rescheduled at short notice",
            "Customers aren't told when engineers are running late",
            "Install lead times are too long",
            "Jobs get booked into the wrong time slots",
            "Schedules change on the day with no warning",
            "Not enough engineers for the number of installs",
            "We don't hit our appointment windows",
        ),
        customer=(
            "Engineer didn't turn up",
            "appointment cancelled on the day, twice",
            "Waited in all day for an engineer who never came",
            "Install date kept getting moved",
            "No text to say the engineer was running late",
            "Had to take a day off work for nothing",
            "Missed appointment and no apology",
            "Rescheduled my install three times",
            "waited 3 weeks for an install slot",
        ),
    ),
    "outage_updates": Theme(
        I,
        {L: 0.05, ST: 0.1, CU: 0.15},
        internal=(
            "We don't tell customers about outages proactively",
            "The status page isn't updated during incidents",
            "Field and contact centre don't get outage information quickly",
            "Customers hear about faults before we do",
            "Outage communication is slow",
            "No automatic texts when there's a network fault",
        ),
        customer=(
            "Not told about outages",
            "Internet went down and no one said why",
            "Had to find out about the outage on Facebook",
            "no updates during outages",
            "The service status page is never up to date",
            "When it goes down there's no info on when it'll be back",
            "lost connection for a day and heard nothing, cost our business money",
            "Should text when there's a fault in the area",
            "outage updates are useless",
        ),
    ),
    "digital_self_service": Theme(
        I,
        {L: 0.5, ST: 0.1, CU: 0.08},
        internal=(
            "Move more customers onto digital self-service",
            "Add live chat on the website",
            "Grow app adoption",
            "More self-service options",
            "Digitise more of the customer journey",
            "Offer support on WhatsApp and social media",
            "Add a chatbot for simple questions",
            "Get more customers paying online",
            "Expand our digital channels",
            "Let customers book engineer slots online",
        ),
        customer=(
            "Would like a live chat option",
            "let me book the engineer online",
            "More things doable online without ringing",
            "A whatsapp support option would be good",
            "Should be able to sort stuff through the app",
            "Need an online chat",
        ),
    ),
    "staff_training": Theme(
        I,
        {L: 0.35, ST: 0.15, CU: 0.06},
        internal=(
            "More training for new starters",
            "Onboard new hires faster",
            "Product training when packages change",
            "Coaching for front-line staff",
            "A better induction for new advisors",
            "Keep staff up to date with new offers",
            "Refresher training on complaint handling",
            "Train advisors on the TV product",
            "Develop team leaders' coaching skills",
        ),
        customer=(
            "new staff didn't seem to know the answer",
            "Some advisors need more training",
            "Depends who you get, some know nothing",
            "Staff should be better trained on TV problems",
        ),
    ),
    "proactive_contact": Theme(
        I,
        {L: 0.3, ST: 0.1, CU: 0.06},
        internal=(
            "Be more proactive in contacting customers",
            "Check in with customers after installation",
            "Reach out before contracts end",
            "Follow up after a fault is fixed",
            "Contact at-risk customers before they leave",
            "More regular updates to customers",
            "A welcome call for new customers",
            "Ask customers for feedback more often",
        ),
        customer=(
            "Would be nice if they checked in after the install",
            "never hear from them unless it's a bill",
            "Follow up after fixing a problem",
            "Contact me before my contract ends with options",
        ),
    ),
    "internal_tools": Theme(
        I,
        {L: 0.1, ST: 0.35, CU: 0.0},
        internal=(
            "Too many systems to look up one customer",
            "The CRM is slow and crashes",
            "Our tools don't talk to each other",
            "We need a single view of the customer",
            "Switching between five screens on every call",
            "Systems are outdated",
            "The billing system and the CRM show different data",
            "Engineers' tablets are slow and old",
            "Job sheets are still on paper in some areas",
            "Can't see a customer's open tickets",
            "The knowledge base is out of date",
            "Systems go down at busy times",
            "Laptops take forever to load the CRM",
        ),
    ),
    "handoffs": Theme(
        I,
        {L: 0.0, ST: 0.3, CU: 0.0},
        internal=(
            "Handoffs between sales and engineering lose information",
            "We don't know what sales promised the customer",
            "Notes don't get passed on between teams",
            "Jobs arrive without the right details",
            "Billing changes aren't passed on to customer service",
            "No clear owner when a case moves between teams",
            "Sales sign customers up to things we can't install",
            "Field notes never reach the contact centre",
            "Escalations disappear into a black hole",
            "We find out about price changes from customers",
            "Other departments don't tell us about changes",
            "Tickets bounce between teams",
        ),
    ),
    "call_targets": Theme(
        I,
        {L: 0.0, ST: 0.05, CU: 0.0},
        internal=(
            "Call time targets make us rush customers",
            "Targets focus on speed, not on fixing the problem",
            "We're measured on handling time, not on outcomes",
            "Pressure to end calls quickly",
            "Average handle time matters more than the customer",
            "No time to follow up properly",
            "Targets push us to transfer calls rather than solve them",
            "Too much focus on sales targets during service calls",
        ),
    ),
    # --- What the competition does differently --------------------------------
    "comp_live_chat": Theme(
        C,
        {L: 0.1, ST: 0.25, CU: 0.25},
        tag="good",
        internal=(
            "Competitors offer 24/7 live chat",
            "Others have instant messaging support",
            "Rivals answer on WhatsApp and social media",
            "Competitors have chat in their apps",
            "The big players support customers around the clock",
            "Competitors offer evening and weekend support",
        ),
        customer=(
            "Others have live chat that actually answers",
            "My mum's provider has 24/7 chat, that's good",
            "Competitors have chat support, much quicker",
            "other companies let you message them on whatsapp, good",
            "Big providers have round the clock support",
            "Some have instant chat in the app which is better",
            "Chat support elsewhere is quicker than phoning",
        ),
    ),
    "comp_price_lock": Theme(
        C,
        {L: 0.05, ST: 0.2, CU: 0.35},
        tag="good",
        internal=(
            "Competitors offer price locks",
            "Some rivals guarantee no mid-contract rises",
            "Others show the full price up front",
            "Competitors warn customers before deals end",
            "Rivals' bills are simpler",
            "Competitors use price promises in their marketing",
        ),
        customer=(
            "Other providers fix the price for the whole contract",
            "No mid-contract price rises with some others",
            "competitors tell you upfront what you'll pay after the deal",
            "Some have price promises, good",
            "clearer pricing elsewhere",
            "My sister's provider guarantees the price for 2 years",
            "Others are more upfront about costs",
            "other companies send a reminder before the deal ends",
        ),
    ),
    "comp_better_app": Theme(
        C,
        {L: 0.0, ST: 0.15, CU: 0.25},
        tag="good",
        internal=(
            "Rivals' apps are more polished",
            "Competitors let customers track the engineer live",
            "Competitor apps have better reviews",
            "Others have invested heavily in their app",
        ),
        customer=(
            "Other apps are much better",
            "competitor app lets you do everything",
            "My old provider's app never logged me out",
            "Others have slicker websites",
            "Better apps elsewhere, you can track the engineer",
            "Other providers' apps actually work",
            "You can see your usage and bills easily in others' apps",
        ),
    ),
    "comp_faceless": Theme(
        C,
        {L: 0.6, ST: 0.3, CU: 0.2},
        tag="bad",
        internal=(
            "Big competitors use offshore call centres",
            "Rivals are faceless and scripted",
            "Competitors' customers can't get hold of a human",
            "The big players treat customers like a number",
            "Competitors use chatbots instead of people",
            "National providers have no local presence",
            "Their support is scripted and impersonal",
            "Competitors route calls abroad",
            "The big brands don't care about small towns",
        ),
        customer=(
            "Big providers use call centres abroad, hard to understand",
            "the big companies are faceless",
            "Other firms make you talk to a bot",
            "My last provider was scripted and useless",
            "Larger companies don't care about you",
            "Worse service at the big ones",
            "With others you can never reach a human",
        ),
    ),
    "comp_price_war": Theme(
        C,
        {L: 0.5, ST: 0.15, CU: 0.05},
        tag="bad",
        internal=(
            "Competitors compete on price, not service",
            "Rivals undercut us with loss-leading deals",
            "They race to the bottom on price",
            "Cheap headline prices with poor service behind them",
            "Competitors lure customers with low intro offers",
            "Discount-led competitors don't keep customers long",
            "They sell on price and neglect service",
        ),
        customer=(
            "Cheaper elsewhere but the service is worse",
            "others are cheap but you get what you pay for",
            "Budget providers cut corners",
        ),
    ),
    "comp_deals": Theme(
        C,
        {L: 0.15, ST: 0.15, CU: 0.25},
        tag="neutral",
        internal=(
            "Competitors' headline prices are a bit lower",
            "Others give switching incentives",
            "Similar pricing to most rivals",
            "Competitors do cashback offers",
        ),
        customer=(
            "Other providers have cheaper deals",
            "Cheaper intro deals elsewhere",
            "Some are cheaper, some aren't",
            "Similar prices to the big names",
            "they do cashback and vouchers when you switch",
            "Prices are about the same really",
        ),
    ),
    "comp_bundles": Theme(
        C,
        {L: 0.3, ST: 0.2, CU: 0.15},
        tag="neutral",
        internal=(
            "Competitors bundle mobile with broadband",
            "Rivals include streaming subscriptions",
            "Others offer quad-play bundles",
            "Bigger channel line-ups elsewhere",
            "Competitors bundle Netflix and sports",
            "Some rivals offer mobile SIM deals",
        ),
        customer=(
            "Others include mobile in the bundle",
            "Some do netflix included",
            "More TV channels elsewhere",
            "Competitors bundle sports channels",
            "others throw in a mobile sim",
            "Bigger TV packages at other providers",
        ),
    ),
    "comp_no_idea": Theme(
        C,
        {L: 0.0, ST: 0.0, CU: 0.15},
        tag="neutral",
        customer=(
            "They're all the same really",
            "Not sure, never been with anyone else",
            "don't know",
            "No idea",
            "Much the same as everyone else",
            "Can't compare, only ever been with Northwind",
            "all pretty similar",
        ),
    ),
    # --- What to continue, what to start ---------------------------------------
    "keep_friendly_staff": Theme(
        CS,
        {L: 0.5, ST: 0.45, CU: 0.35},
        tag="continue",
        internal=(
            "Keep our friendly, helpful people",
            "Continue hiring for attitude",
            "Keep the personal touch",
            "Continue investing in our staff",
            "Keep treating customers like neighbours",
            "Continue recognising great service",
            "Keep empowering advisors to help",
            "Keep our local call centre",
        ),
        customer=(
            "Keep the friendly staff",
            "keep being helpful",
            "Don't lose the local feel",
            "Keep UK call centres",
            "Keep the nice people on the phones",
            "carry on being friendly",
            "Keep the personal service",
            "Keep real people answering the phone",
        ),
    ),
    "keep_network_investment": Theme(
        CS,
        {L: 0.5, ST: 0.25, CU: 0.2},
        tag="continue",
        internal=(
            "Keep investing in the network",
            "Continue the fibre rollout",
            "Keep network quality high",
            "Continue upgrading speeds",
            "Keep expanding coverage to villages",
            "Continue proactive network maintenance",
        ),
        customer=(
            "Keep the internet fast",
            "keep the speeds up",
            "Roll fibre out to more villages",
            "Keep the network reliable",
            "Keep improving the speeds",
        ),
    ),
    "keep_fast_response": Theme(
        CS,
        {L: 0.5, ST: 0.1, CU: 0.0},
        tag="continue",
        internal=(
            "Keep our fast response times",
            "Continue answering quickly",
            "Maintain our response-time standards",
            "Keep the same-day reply promise",
            "Keep call wait times low",
            "Continue our speed of service",
            "Keep responding fast on every channel",
        ),
    ),
    "start_price_warnings": Theme(
        CS,
        {L: 0.0, ST: 0.2, CU: 0.4},
        tag="start",
        internal=(
            "Warn customers before discounts end",
            "Send clear notice of price changes",
            "Redesign the bill so it's easy to read",
            "Tell staff about price changes before customers",
            "Offer a new deal before contracts end",
            "Explain price rises in plain English",
        ),
        customer=(
            "Tell people before prices go up",
            "Warn me before my deal ends",
            "Clearer bills please",
            "send a reminder before the price changes",
            "Be upfront about price rises",
            "Stop sneaky price increases",
            "Explain the bill properly",
            "Let me know in advance what I'll pay",
            "email me a month before any change in price",
        ),
    ),
    "start_single_owner": Theme(
        CS,
        {L: 0.05, ST: 0.2, CU: 0.35},
        tag="start",
        internal=(
            "Give each complaint a single owner",
            "One point of contact for complex cases",
            "Empower advisors to solve problems without transferring",
            "Keep case notes visible to every team",
            "Call customers back when we promise",
            "Follow complaints through to resolution",
        ),
        customer=(
            "Give me one person who owns my problem",
            "A case number so I don't have to repeat myself",
            "Actually call back when promised",
            "One point of contact",
            "Stop passing people around",
            "Keep notes so the next person knows what's going on",
            "Have someone follow it through to the end",
            "a dedicated account manager for businesses",
        ),
    ),
    "start_fix_app": Theme(
        CS,
        {L: 0.0, ST: 0.1, CU: 0.3},
        tag="start",
        internal=(
            "Fix the app login issues",
            "Invest in the app",
            "Make the portal show what we see",
            "Fix password reset",
        ),
        customer=(
            "Fix the app",
            "Sort the login problems",
            "Make the app actually work",
            "Stop the app logging me out",
            "Fix the website account",
            "Make the online account show everything",
            "test the app before releasing updates!!",
        ),
    ),
    "start_live_chat": Theme(
        CS,
        {L: 0.3, ST: 0.2, CU: 0.12},
        tag="start",
        internal=(
            "Start live chat",
            "Launch WhatsApp support",
            "Introduce a chatbot for simple queries",
            "Offer support in the evenings and at weekends",
            "Add messaging in the app",
            "Start online booking of engineer visits",
        ),
        customer=(
            "Start a live chat",
            "Add whatsapp support",
            "Evening opening hours for support",
            "Let me book appointments online",
            "Text updates on my case",
        ),
    ),
    "start_one_system": Theme(
        CS,
        {L: 0.1, ST: 0.3, CU: 0.0},
        tag="start",
        internal=(
            "Give us one system with the whole customer history",
            "Replace the CRM",
            "Upgrade the engineers' tablets",
            "Share job notes between field and office",
            "Get rid of paper job sheets",
            "Integrate billing and the CRM",
            "A shared ticket system across all teams",
            "Update the knowledge base",
        ),
    ),
    "start_loyalty": Theme(
        CS,
        {L: 0.3, ST: 0.15, CU: 0.3},
        tag="start",
        internal=(
            "Launch a loyalty scheme",
            "Reward long-standing customers",
            "Retention offers before customers ask",
            "Loyalty perks for existing customers",
            "Give the retention team more room to offer deals",
            "A referral scheme",
        ),
        customer=(
            "Reward loyal customers, not just new ones",
            "Loyalty discounts",
            "Stop giving the best deals only to new customers",
            "Something for people who've stayed for years",
            "Existing customers deserve deals too",
            "loyalty scheme would be nice",
            "Better deals for long-term customers",
        ),
    ),
    "start_outage_alerts": Theme(
        CS,
        {L: 0.0, ST: 0.1, CU: 0.15},
        tag="start",
        internal=(
            "Automatic outage texts to customers",
            "A live status page",
            "Tell frontline teams about incidents straight away",
            "Notify customers about planned work",
            "Share outage updates with engineers and the contact centre",
        ),
        customer=(
            "Text me when there's an outage",
            "Proper outage updates",
            "Keep the status page up to date",
            "Tell us when it'll be fixed",
            "Send alerts about planned maintenance",
        ),
    ),
}


# Per staff department and customer segment: chances that differ from the group's.
# The departments see the company through their own work, which is what the
# consistency ("silo") analysis should find.
CHANCE_OVERRIDES: dict[tuple[str, str], dict[str, float]] = {
    (ST, "Customer Service"): {
        "friendly_staff": 0.9,
        "team_spirit": 0.5,
        "call_targets": 0.9,
        "internal_tools": 0.8,
        "slow_response": 0.7,
        "passed_around": 0.6,
        "app_problems": 0.6,
        "billing_surprises": 0.4,
        "comp_live_chat": 0.6,
        "start_single_owner": 0.7,
        "start_one_system": 0.5,
    },
    (ST, "Field Engineering"): {
        "skilled_engineers": 0.95,
        "reliable_network": 0.8,
        "friendly_staff": 0.3,
        "handoffs": 0.9,
        "missed_appointments": 0.8,
        "internal_tools": 0.5,
        "outage_updates": 0.5,
        "billing_surprises": 0.05,
        "comp_better_app": 0.5,
        "keep_network_investment": 0.7,
        "start_one_system": 0.6,
        "start_outage_alerts": 0.5,
    },
    (ST, "Sales & Retention"): {
        "good_value": 0.9,
        "fast_response": 0.6,
        "easy_online_account": 0.3,
        "billing_surprises": 0.5,
        "staff_training": 0.4,
        "handoffs": 0.3,
        "comp_price_lock": 0.7,
        "comp_deals": 0.5,
        "comp_price_war": 0.4,
        "start_loyalty": 0.85,
    },
    (ST, "Billing & Accounts"): {
        "billing_surprises": 0.95,
        "internal_tools": 0.7,
        "handoffs": 0.6,
        "passed_around": 0.3,
        "comp_price_lock": 0.6,
        "start_price_warnings": 0.9,
    },
    (CU, "Small business"): {
        "outage_updates": 0.45,
        "start_outage_alerts": 0.35,
        "start_single_owner": 0.45,
        "reliable_network": 0.3,
    },
    (CU, "New customer (<6 months)"): {
        "skilled_engineers": 0.5,
        "good_value": 0.35,
        "missed_appointments": 0.35,
        "billing_surprises": 0.15,
        "start_loyalty": 0.05,
    },
}


# Share of each 1-5 value per group and rating item. Leaders and customers get
# these shares exactly (see _quota); staff sheets draw from them. Unknown items
# (a consultant added one) use the group's "overall" mix.
RATING_MIX: dict[str, dict[str, dict[int, float]]] = {
    L: {
        "overall": {5: 0.75, 4: 0.25},
        "consistency": {5: 0.5, 4: 0.375, 3: 0.125},
        "problem_handling": {5: 0.625, 4: 0.375},
        "customer_centricity": {5: 0.875, 4: 0.125},
    },
    ST: {
        "overall": {5: 0.1, 4: 0.5, 3: 0.35, 2: 0.05},
        "consistency": {4: 0.35, 3: 0.5, 2: 0.15},
        "problem_handling": {4: 0.45, 3: 0.4, 2: 0.15},
        "customer_centricity": {5: 0.15, 4: 0.45, 3: 0.4},
    },
    CU: {
        "overall": {5: 0.07, 4: 0.18, 3: 0.33, 2: 0.3, 1: 0.12},
        "consistency": {5: 0.05, 4: 0.12, 3: 0.28, 2: 0.35, 1: 0.2},
        "problem_handling": {5: 0.05, 4: 0.12, 3: 0.25, 2: 0.33, 1: 0.25},
        "customer_centricity": {5: 0.05, 4: 0.15, 3: 0.3, 2: 0.32, 1: 0.18},
    },
}
# Per department: added to a sheet's rating (sales sit closer to leadership,
# customer service hears the complaints).
STAFF_RATING_SHIFT: dict[str, dict[str, int]] = {
    "Customer Service": {"consistency": -1},
    "Sales & Retention": {"overall": 1, "customer_centricity": 1},
    "Billing & Accounts": {"problem_handling": -1},
}
# How far one person's ratings wander from their general mood (0 = all items in lockstep).
MOOD_NOISE = 0.15


@dataclass(frozen=True)
class StaffSheet:
    group_name: str
    department: str
    members: int
    channel: str = STAFF_LINK
    # Paper tallies record how many members gave each value; the others agree one value.
    spread: bool = False
    draft: bool = False


DEPARTMENTS = ["Customer Service", "Field Engineering", "Sales & Retention", "Billing & Accounts"]
STAFF_SHEETS = [
    StaffSheet("Team Harbour", "Customer Service", 8),
    StaffSheet("Team Lighthouse", "Customer Service", 7),
    StaffSheet("Evening Shift", "Customer Service", 6, draft=True),
    StaffSheet("North Crew", "Field Engineering", 7, channel=PAPER, spread=True),
    StaffSheet("South Crew", "Field Engineering", 6, channel=PAPER, spread=True),
    StaffSheet("Install Planning", "Field Engineering", 6),
    StaffSheet("Retention Desk", "Sales & Retention", 7),
    StaffSheet("New Connections", "Sales & Retention", 8),
    StaffSheet("Accounts Team", "Billing & Accounts", 6),
    StaffSheet("Payments & Collections", "Billing & Accounts", 7),
]

# Shares of invited customers per segment; the open link was a small-business focus group.
SEGMENTS = {"Residential": 0.6, "Small business": 0.15, "New customer (<6 months)": 0.25}
OPEN_LINK_SEGMENT = "Small business"

FIRST_NAMES = (
    "Olivia Amelia Isla Ava Mia Grace Freya Lily Sophie Emily Chloe Ruby Evie Ella Priya Aisha Zara Hannah "
    "Megan Niamh Oliver George Harry Noah Jack Leo Oscar Charlie Jacob Thomas James William Mohammed Arjun "
    "Daniel Samuel Joseph Lewis Callum Ryan Owen Rhys Dylan Liam Tomasz Kwame"
).split()
LAST_NAMES = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White "
    "Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis Harris Martin Cooper Hughes Edwards Turner "
    "Hill Moore Ward Morris King Baker Shaw Hussain Kowalski Murphy Campbell Reid Mensah Chen Singh"
).split()
TRADES = (
    "plumbing bakery joinery dental-care accountants florist garage cafe print-shop physio "
    "vets electrical lettings salon tutoring design builders"
).split()
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

# The gaps planted on purpose (theme keys). The tests check each shows in the data.
PLANTED = {
    # Leadership calls it a strength; customers list its opposite as an improvement.
    "contradictions": [("fast_response", "slow_response"), ("easy_online_account", "app_problems")],
    # Leadership and customers both call it a strength.
    "shared_strengths": ["friendly_staff", "reliable_network"],
    # Customers raise it; no leader does.
    "blind_spots": ["billing_surprises", "passed_around"],
    # Staff raise it, customers cannot see it; leaders barely.
    "internal_issues": ["internal_tools", "handoffs", "call_targets"],
}


# --- Generation -------------------------------------------------------------------


def chance(theme_key: str, group: str, subgroup: str = "") -> float:
    """The chance one respondent of this group (department or segment) mentions the theme."""
    override = CHANCE_OVERRIDES.get((group, subgroup), {})
    return override.get(theme_key, THEMES[theme_key].chance.get(group, 0.0))


def answer_sheets(rng: Random, group: str, subgroups: list[str]) -> list[list[ItemInput]]:
    """
    The items of len(subgroups) respondents of one group, subgroups[i] being
    respondent i's department or segment.

    Within each subgroup a theme is mentioned by chance x size respondents
    (the fraction rounded up or down at random), picked at random: with eight
    leaders, independent coin flips could easily leave a planted theme with
    two mentions instead of six.
    """
    mentions: list[set[str]] = [set() for _ in subgroups]
    for subgroup in dict.fromkeys(subgroups):
        members = [i for i, name in enumerate(subgroups) if name == subgroup]
        for key, theme in THEMES.items():
            if not theme.phrases(group):
                continue
            expected = chance(key, group, subgroup) * len(members)
            count = int(expected) + (rng.random() < expected - int(expected))
            for i in rng.sample(members, count):
                mentions[i].add(key)
    return [_items(rng, group, subgroup, mentioned) for subgroup, mentioned in zip(subgroups, mentions)]


def _items(rng: Random, group: str, subgroup: str, mentioned: set[str]) -> list[ItemInput]:
    """1-4 items per question from the themes this respondent mentions, each in a randomly picked wording."""
    low, high = ITEMS_PER_QUESTION
    items: list[ItemInput] = []
    for question in QuestionKey.values:
        candidates = [
            (key, chance(key, group, subgroup))
            for key, theme in THEMES.items()
            if theme.question == question and theme.phrases(group)
        ]
        candidates = [(key, p) for key, p in candidates if p > 0]
        picked = [key for key, _ in candidates if key in mentioned]
        if len(picked) < low:
            # Everyone writes something: pick among the likelier things for this person to say.
            rest = [(key, p) for key, p in candidates if key not in picked]
            picked += _weighted_sample(rng, rest, low - len(picked))
        if len(picked) > high:
            # Too much to write down: the likelier themes survive, so a department keeps its own view.
            picked = _weighted_sample(rng, [(key, p) for key, p in candidates if key in picked], high)
        rng.shuffle(picked)
        for key in picked:
            theme = THEMES[key]
            items.append(ItemInput(question_key=question, text=rng.choice(theme.phrases(group)), tag=theme.tag))
    return items


def _weighted_sample(rng: Random, weighted: list[tuple[str, float]], k: int) -> list[str]:
    chosen: list[str] = []
    pool = list(weighted)
    while pool and len(chosen) < k:
        key = rng.choices([key for key, _ in pool], weights=[p for _, p in pool])[0]
        chosen.append(key)
        pool = [(other, p) for other, p in pool if other != key]
    return chosen


def _quota(shares: dict[int, float], n: int) -> list[int]:
    """Exactly n values in the given shares (largest remainder), lowest first."""
    total = sum(shares.values())
    exact = {value: share * n / total for value, share in shares.items()}
    counts = {value: int(x) for value, x in exact.items()}
    short = n - sum(counts.values())
    for value in sorted(exact, key=lambda v: exact[v] - counts[v], reverse=True)[:short]:
        counts[value] += 1
    return sorted(value for value, count in counts.items() for _ in range(count))


def individual_ratings(rng: Random, group: str, n: int, item_keys: list[str]) -> list[dict[str, int]]:
    """
    Ratings of n individuals hitting the group's mix exactly. Each person has a
    mood; an item's values go out in mood order (plus noise), so one person's
    ratings hang together instead of jumping from 1 to 5 between items.
    """
    moods = [rng.random() for _ in range(n)]
    people: list[dict[str, int]] = [{} for _ in range(n)]
    mix = RATING_MIX[group]
    for key in item_keys:
        values = _quota(mix.get(key, mix["overall"]), n)
        noisy = [mood + rng.gauss(0, MOOD_NOISE) for mood in moods]
        for person, value in zip(sorted(range(n), key=noisy.__getitem__), values):
            people[person][key] = value
    return people


def staff_ratings(rng: Random, sheet: StaffSheet, item_keys: list[str]) -> list[RatingInput]:
    """
    A staff sheet's ratings: one agreed value per item carrying all members'
    votes, or (paper tallies) the members' spread around it, votes summing to
    the member count.
    """
    mix = RATING_MIX[ST]
    shift = STAFF_RATING_SHIFT.get(sheet.department, {})
    ratings: list[RatingInput] = []
    for key in item_keys:
        shares = mix.get(key, mix["overall"])
        agreed = _clamp(rng.choices(list(shares), weights=list(shares.values()))[0] + shift.get(key, 0))
        if not sheet.spread:
            ratings.append(RatingInput(item_key=key, value=agreed, votes=sheet.members))
            continue
        # Repeated values are merged into one row with their votes summed by the service.
        for _ in range(sheet.members):
            ratings.append(RatingInput(item_key=key, value=_clamp(agreed + rng.choice((-1, 0, 0, 0, 1))), votes=1))
    return ratings


def _clamp(value: int) -> int:
    return max(1, min(5, value))


def _contacts(rng: Random, n: int) -> list[Contact]:
    segments = [segment for segment, count in _segment_counts(n).items() for _ in range(count)]
    rng.shuffle(segments)
    contacts: list[Contact] = []
    taken: set[str] = set()
    for segment in segments:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if segment == "Small business":
            local = rng.choice(("info", "office", "accounts", first.lower()))
            email = f"{local}@{last.lower()}-{rng.choice(TRADES)}.example"
        else:
            sep = rng.choice((".", "", "_"))
            email = f"{first.lower()}{sep}{last.lower()}@{rng.choice(EMAIL_DOMAINS)}"
        number = 2
        base_local, domain = email.split("@")
        while email in taken:
            email, number = f"{base_local}{number}@{domain}", number + 1
        taken.add(email)
        contacts.append(Contact(email=email, name=f"{first} {last}", segment=segment))
    return contacts


def _segment_counts(n: int) -> dict[str, int]:
    values = _quota({i: share for i, share in enumerate(SEGMENTS.values())}, n)
    names = list(SEGMENTS)
    return {name: values.count(i) for i, name in enumerate(names)}


# --- Seeding --------------------------------------------------------------------


@dataclass
class SeedResult:
    engagement: Engagement
    created: bool
    user: AbstractBaseUser
    password: str


def demo_password(*, debug: bool, given: str = "") -> str:
    """The given password; the documented one in development; otherwise a fresh random one."""
    if given:
        return given
    return DEBUG_PASSWORD if debug else secrets.token_urlsafe(12)


@transaction.atomic
@transaction.atomic
def demo_seed(*, password: str) -> SeedResult:
    """
    Create the demo engagement unless its slug exists; always make sure the
    demo consultant exists, is a member of its workspace and has ``password``.
    """
    engagement = Engagement.objects.select_related("workspace").filter(slug=ENGAGEMENT_SLUG).first()
    workspace = engagement.workspace if engagement else Workspace.objects.filter(name=WORKSPACE_NAME).first()
    if workspace is None:
        workspace = services.workspace_create(name=WORKSPACE_NAME)
    user, _ = services.consultant_ensure(
        username=USERNAME,
        workspace=workspace,
        email="demo@example.com",
        password=password,
        first_name="Demo",
        last_name="Consultant",
    )
    if engagement is not None:
        return SeedResult(engagement=engagement, created=False, user=user, password=password)

    engagement = services.engagement_create(workspace=workspace, name=COMPANY, slug=ENGAGEMENT_SLUG)
    for name in DEPARTMENTS:
        services.department_add(engagement=engagement, name=name)
    wave = engagement.waves.get(number=1)
    today = timezone.localdate()
    services.wave_update(
        wave=wave,
        title="Baseline",
        opens_on=today - timedelta(days=21),
        closes_on=today + timedelta(days=14),
        open_link_enabled=True,
    )

    rng = Random(SEED)
    item_keys = list(wave.rating_items.values_list("key", flat=True))
    _seed_leaders(rng, wave, user, item_keys)
    _seed_staff(rng, wave, item_keys)
    _seed_customers(rng, wave, item_keys)
    return SeedResult(engagement=engagement, created=True, user=user, password=password)


def _seed_leaders(rng: Random, wave: Wave, user: AbstractBaseUser, item_keys: list[str]) -> None:
    session = services.session_open(wave=wave, opened_by=user, name="Leadership team workshop")
    services.session_predictions_set(session=session, predict_customers=True, predict_staff=False)
    # A generator of its own: the predictions leave every answer above unchanged.
    forecast = Random(SEED + 1)
    sheets = answer_sheets(rng, L, [""] * LEADERS)
    for items, ratings in zip(sheets, individual_ratings(rng, L, LEADERS, item_keys)):
        leader = services.leader_submit(session=session, answers=Answers(items=items, ratings=_rating_inputs(ratings)))
        services.prediction_submit(
            session=session, respondent=leader, target=Group.CUSTOMER, prediction=leader_forecast(forecast, item_keys)
        )
    services.session_close(session=session)


# The leaders' forecast of the customers (the reveal): over-optimistic on purpose. Per rating
# item, the share of customers they expect to give 5 (customers' actual: 5-7%, RATING_MIX)
# and the average they expect (actual about 2.6).
FORECAST_TOP_BOX = {"overall": (35, 55), "consistency": (25, 45), "problem_handling": (25, 45), "customer_centricity": (30, 50)}
FORECAST_MEAN = (3.6, 4.2)
# What they expect customers to raise: their own strengths (the planted contradiction
# fast_response among them) and improvements, never the planted blind spots.
FORECAST_THEMES = {
    QuestionKey.STRENGTHS: ["fast_response", "friendly_staff", "reliable_network", "easy_online_account"],
    QuestionKey.IMPROVEMENTS: ["missed_appointments", "outage_updates", "digital_self_service"],
}


def leader_forecast(rng: Random, item_keys: list[str]) -> services.PredictionInput:
    ratings = []
    for key in item_keys:
        low, high = FORECAST_TOP_BOX.get(key, FORECAST_TOP_BOX["overall"])
        top_box = rng.randint(low, high)
        least, most = services.mean_bounds(top_box)
        mean = Decimal(str(round(rng.uniform(*FORECAST_MEAN), 1)))
        ratings.append(services.PredictedRatingInput(key, top_box, min(max(mean, least), most).quantize(Decimal("0.1"))))
    items = [
        ItemInput(question, rng.choice(THEMES[key].internal))
        for question, keys in FORECAST_THEMES.items()
        for key in rng.sample(keys, rng.randint(1, 3))
    ]
    return services.PredictionInput(ratings=ratings, items=items)


def _seed_staff(rng: Random, wave: Wave, item_keys: list[str]) -> None:
    all_items = answer_sheets(rng, ST, [sheet.department for sheet in STAFF_SHEETS])
    for sheet, items in zip(STAFF_SHEETS, all_items):
        details = SheetDetails(group_name=sheet.group_name, department=sheet.department, members=sheet.members)
        ratings = staff_ratings(rng, sheet, item_keys)
        if sheet.draft:
            # Half-filled: the group got through the first two questions, not yet the ratings.
            keep = {QuestionKey.STRENGTHS, QuestionKey.IMPROVEMENTS}
            items, ratings = [item for item in items if item.question_key in keep], []
        services.staff_sheet_save(
            wave=wave,
            details=details,
            answers=Answers(items=items, ratings=ratings),
            submit=not sheet.draft,
            channel=sheet.channel,
        )


def _seed_customers(rng: Random, wave: Wave, item_keys: list[str]) -> None:
    contacts = _contacts(rng, CUSTOMERS_INVITED_ANSWERED + INVITATIONS_UNANSWERED)
    services.invitations_create(wave=wave, contacts=contacts)
    invitations = {invitation.email: invitation for invitation in wave.invitations.all()}
    # The demo's invitations went out a week ago (recorded as sent; nobody is emailed).
    sent_at = timezone.now() - timedelta(days=7)
    InvitationEmail.objects.bulk_create(
        InvitationEmail(invitation=invitation, status=InvitationEmail.Status.SENT, sent_at=sent_at, due_at=sent_at)
        for invitation in invitations.values()
    )
    unanswered = rng.sample(contacts, INVITATIONS_UNANSWERED)
    # ...and the one reminder the wave plans, three days ago, so nothing is left to send.
    reminded_at = sent_at + timedelta(days=wave.reminder_after_days)
    InvitationEmail.objects.bulk_create(
        InvitationEmail(
            invitation=invitations[contact.email], kind=InvitationEmail.Kind.REMINDER_1,
            status=InvitationEmail.Status.SENT, sent_at=reminded_at, due_at=reminded_at,
        )
        for contact in unanswered
    )
    for contact in unanswered[:INVITATIONS_OPENED_ONLY]:
        services.invitation_mark_opened(invitation=invitations[contact.email])
    for contact in unanswered[:INVITATIONS_STARTED_ONLY]:
        mailing.invitation_mark_started(invitation=invitations[contact.email])

    answering = [contact for contact in contacts if contact not in unanswered]
    segments = [contact.segment for contact in answering] + [OPEN_LINK_SEGMENT] * CUSTOMERS_OPEN_LINK
    answers = [
        Answers(items=items, ratings=_rating_inputs(ratings))
        for items, ratings in zip(
            answer_sheets(rng, CU, segments), individual_ratings(rng, CU, len(segments), item_keys)
        )
    ]
    for contact, answer in zip(answering, answers):
        services.invitation_submit(invitation=invitations[contact.email], answers=answer)
    for answer in answers[len(answering) :]:
        services.open_link_submit(wave=wave, answers=answer, segment=OPEN_LINK_SEGMENT)


def _rating_inputs(ratings: dict[str, int]) -> list[RatingInput]:
    return [RatingInput(item_key=key, value=value) for key, value in ratings.items()]


def phrases_of(theme_key: str, group: str) -> set[str]:
    return set(THEMES[theme_key].phrases(group))

