"""The examples of Parse's GraphQL guide (docs.parseplatform.org/graphql/guide), verbatim.

Source: github.com/parse-community/docs, ``_includes/graphql/{health-check,classes,objects,
queries,users,customisation}.md``. Each constant is one example's GraphQL block exactly as the
guide prints it (comments, tabs and trailing spaces included), with the response the guide shows
where a test compares against it. The one change (in ``parse_guide_more.py``): the guide cuts
the "Parent Relation Style" query short with ``... too many brackets here``, which is not
GraphQL; ``PARENT_RELATION`` closes those brackets and changes nothing else.
"""

from __future__ import annotations

HEALTH = """# GraphQL
query healthy {
  health
}"""

CREATE_CLASS = """# GraphQL
mutation createGameScoreClass {
  createClass(
    input: {
      clientMutationId: "anFrontId"
      name: "GameScore"
      schemaFields: {
        addStrings: [{ name: "playerName" }]
        addNumbers: [{ name: "score" }]
        addBooleans: [{ name: "cheatMode" }]
      }
    }
  ) {
    clientMutationId
    class {
      name
      schemaFields {
        name
        __typename
      }
    }
  }
}"""
CREATE_CLASS_FIELDS = {
    ("objectId", "SchemaStringField"),
    ("updatedAt", "SchemaDateField"),
    ("createdAt", "SchemaDateField"),
    ("playerName", "SchemaStringField"),
    ("score", "SchemaNumberField"),
    ("cheatMode", "SchemaBooleanField"),
    ("ACL", "SchemaACLField"),
}

# -- Objects ------------------------------------------------------------------------------------
CREATE = """# GraphQL
mutation createAGameScore {
  createGameScore(
    input: {
      clientMutationId: "anUniqueId"
      fields: {
        playerName: "Sean Plott",
        score: 1337,
        cheatMode: false
      }
    }
  ) {
    clientMutationId
    gameScore {
      id
      updatedAt
      createdAt
      playerName
      score
      cheatMode
      ACL {
        public {
          write
          read
        }
      }
    }
  }
}"""
CREATE_RESPONSE = {
    "createGameScore": {
        "clientMutationId": "anUniqueId",
        "gameScore": {
            "id": "R2FtZVNjb3JlOjZtdGlNcmtXNnY=",
            "updatedAt": "2019-12-02T10:14:28.786Z",
            "createdAt": "2019-12-02T10:14:28.786Z",
            "playerName": "Sean Plott",
            "score": 1337,
            "cheatMode": False,
            "ACL": {"public": {"write": True, "read": True}},
        },
    }
}

UPDATE = """# GraphQL
mutation updateAGameScore {
  updateGameScore(
    input: {
      id: "R2FtZVNjb3JlOmM3TVpDZEhQY2w="
      fields: { playerName: "Charles Francois" }
    }
  ) {
    gameScore {
      id
      playerName
    }
  }
}"""
UPDATE_RESPONSE = {
    "updateGameScore": {
        "gameScore": {"id": "R2FtZVNjb3JlOmM3TVpDZEhQY2w=", "playerName": "Charles Francois"}
    }
}

DELETE = """mutation deleteAGameScore {
  deleteGameScore(input: { id: "R2FtZVNjb3JlOmM3TVpDZEhQY2w=" }) {
    gameScore {
      id
      playerName
    }
  }
}"""
DELETE_RESPONSE = {
    "deleteGameScore": {
        "gameScore": {"id": "R2FtZVNjb3JlOmM3TVpDZEhQY2w=", "playerName": "Charles Francois"}
    }
}

NESTED_MUTATION = """mutation aNestedMutation {
  createCountry(
    input: {
      fields: {
        name: "Mars"
        cities: {
          createAndAdd: [{ name: "Alpha",
            companies: {
              createAndAdd: [{
                name: "Motors"
              }]
            }
          }]
        }
      }
    }
  ) {
    country {
      name
      cities {
        edges {
          node {
            name
            companies {
              edges {
                node {
                  name
                }
              }
            }
          }
        }
      }
    }
  }
}"""
NESTED_MUTATION_RESPONSE = {
    "createCountry": {
        "country": {
            "name": "Mars",
            "cities": {
                "edges": [
                    {
                        "node": {
                            "name": "Alpha",
                            "companies": {"edges": [{"node": {"name": "Motors"}}]},
                        }
                    }
                ]
            },
        }
    }
}

# -- Queries ------------------------------------------------------------------------------------
GET = """# GraphQL
query getAGameScore {
  gameScore(id: "R2FtZVNjb3JlOjZtdGlNcmtXNnY=") {
    id
    score
    playerName
    score
    cheatMode
    ACL {
      public {
        read
        write
      }
    }
  }
}"""
GET_RESPONSE = {
    "gameScore": {
        "id": "R2FtZVNjb3JlOjZtdGlNcmtXNnY=",
        "score": 1337,
        "playerName": "Sean Plott",
        "cheatMode": False,
        "ACL": {"public": {"read": True, "write": True}},
    }
}

GET_NODE = """# GraphQL
query getGameScoreWithNodeRelay {
  node(id: "R2FtZVNjb3JlOjZtdGlNcmtXNnY") {
    id
    __typename
    ... on GameScore {
      playerName
      score
      cheatMode
    }
  }
}"""
GET_NODE_RESPONSE = {
    "node": {
        "id": "R2FtZVNjb3JlOjZtdGlNcmtXNnY=",
        "__typename": "GameScore",
        "playerName": "Sean Plott",
        "score": 1337,
        "cheatMode": False,
    }
}

GENERIC_GET = """# GraphQL
query genericGet {
  node(id: "X1VzZXI6Q1lMeWJYMjFjcw==") {
    id
    __typename
    ... on User {
      id
      username
    }
    ... on GameScore {
      playerName
      score
      cheatMode
    }
  }
}"""
GENERIC_GET_RESPONSE = {
    "node": {"id": "X1VzZXI6Q1lMeWJYMjFjcw==", "__typename": "User", "username": "johndoe"}
}

FIND = """# GraphQL
query getSomeGameScores{
  gameScores {
    pageInfo {
      hasNextPage
      hasPreviousPage
      startCursor
      endCursor
    }
    count
    edges {
      cursor
      node {
        id
        playerName
        score
        cheatMode
      }
    }
  }
}"""
SEAN = {"id": "R2FtZVNjb3JlOjZtdGlNcmtXNnY=", "playerName": "Sean Plott", "score": 1337}
JOHN = {"id": "R2FtZVNjb3JlOnp2cHdTYXlmYnA=", "playerName": "John Doe", "score": 13}
STEVE = {"id": "R2FtZVNjb3JlOjNmWjBoQVJDVU0=", "playerName": "Steve Jordan", "score": 134}
FIND_RESPONSE = {
    "gameScores": {
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": "YXJyYXljb25uZWN0aW9uOjA=",
            "endCursor": "YXJyYXljb25uZWN0aW9uOjI=",
        },
        "count": 3,
        "edges": [
            {"cursor": "YXJyYXljb25uZWN0aW9uOjA=", "node": {**SEAN, "cheatMode": False}},
            {"cursor": "YXJyYXljb25uZWN0aW9uOjE=", "node": {**JOHN, "cheatMode": True}},
            {"cursor": "YXJyYXljb25uZWN0aW9uOjI=", "node": {**STEVE, "cheatMode": False}},
        ],
    }
}

FIND_WHERE = "\n".join(
    [
        "# GraphQL",
        "query getSomeGameScores {",
        "  gameScores(where: { ",
        "  \tscore: { greaterThan: 158 }",
        "  }) {",
        "    count",
        "    edges {",
        "      cursor",
        "      node {",
        "        id",
        "        playerName",
        "        score",
        "        cheatMode",
        "      }",
        "    }",
        "  }",
        "}",
    ]
)
FIND_WHERE_RESPONSE = {
    "gameScores": {
        "count": 1,
        "edges": [{"cursor": "YXJyYXljb25uZWN0aW9uOjA=", "node": {**SEAN, "cheatMode": False}}],
    }
}

FIND_ORDER = "\n".join(
    [
        "# GraphQL",
        "query getSomeGameScores {",
        "  gameScores(",
        "  \twhere: { ",
        "  \t  cheatMode: { equalTo: false }",
        "  \t},",
        "  \torder: score_ASC",
        "  ) {",
        "    count",
        "    edges {",
        "      cursor",
        "      node {",
        "        id",
        "        playerName",
        "        score",
        "        cheatMode",
        "      }",
        "    }",
        "  }",
        "}",
    ]
)
FIND_ORDER_RESPONSE = {
    "gameScores": {
        "count": 2,
        "edges": [
            {"cursor": "YXJyYXljb25uZWN0aW9uOjA=", "node": {**STEVE, "cheatMode": False}},
            {"cursor": "YXJyYXljb25uZWN0aW9uOjE=", "node": {**SEAN, "cheatMode": False}},
        ],
    }
}

FIND_AFTER = """# GraphQL
query getSomeGameScores {
  gameScores(after: "YXJyYXljb25uZWN0aW9uOjE") {
    pageInfo {
      hasNextPage
      hasPreviousPage
      startCursor
      endCursor
    }
    count
    edges {
      cursor
      node {
        id
        playerName
        score
        cheatMode
      }
    }
  }
}"""
FIND_AFTER_RESPONSE = {
    "gameScores": {
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": True,
            "startCursor": "YXJyYXljb25uZWN0aW9uOjI=",
            "endCursor": "YXJyYXljb25uZWN0aW9uOjI=",
        },
        "count": 3,
        "edges": [{"cursor": "YXJyYXljb25uZWN0aW9uOjI=", "node": {**STEVE, "cheatMode": False}}],
    }
}
